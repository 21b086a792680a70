"""CEL conditions (``when:``): compile errors a rule author can act on, evaluation over findings."""

from __future__ import annotations

import pytest

from service.matching import conditions

WHEN = 'findings.pods.facts.crashlooping > 0 || findings.health.status == "failed"'


def findings(crashlooping: int, health: str) -> dict[str, object]:
    return {
        "findings": {
            "pods": {"status": "degraded", "facts": {"crashlooping": crashlooping}},
            "health": {"status": health, "facts": {}},
        }
    }


@pytest.mark.parametrize(
    ("crashlooping", "health", "expected"),
    [(0, "ok", False), (2, "ok", True), (0, "failed", True), (3, "failed", True)],
)
def test_condition_evaluates_over_findings(crashlooping: int, health: str, expected: bool) -> None:
    condition = conditions.compile_condition(WHEN)
    assert condition.evaluate(findings(crashlooping, health)) is expected
    assert condition.source == WHEN


def test_syntax_error_carries_cel_message_with_position() -> None:
    with pytest.raises(conditions.ConditionError) as caught:
        conditions.compile_condition("findings.pods.status ==")
    message = str(caught.value)
    assert "1:24" in message
    assert "Syntax error" in message


def test_empty_condition_is_refused() -> None:
    with pytest.raises(conditions.ConditionError, match="non-empty CEL expression"):
        conditions.compile_condition("  ")


def test_non_bool_result_is_an_error_not_false() -> None:
    condition = conditions.compile_condition("findings.pods.facts.crashlooping")
    with pytest.raises(conditions.ConditionError, match="gave int 2, not a bool"):
        condition.evaluate(findings(2, "ok"))


def test_unknown_finding_is_an_error_naming_the_expression() -> None:
    condition = conditions.compile_condition('findings.db.status == "failed"')
    with pytest.raises(conditions.ConditionError) as caught:
        condition.evaluate(findings(0, "ok"))
    assert "findings.db.status" in str(caught.value)
    assert "'db'" in str(caught.value)


def test_has_macro_lets_a_rule_test_for_an_optional_finding() -> None:
    condition = conditions.compile_condition('has(findings.db) && findings.db.status == "failed"')
    assert condition.evaluate(findings(0, "ok")) is False
