"""The runbooks' maintenance clock in ``rules lint``: monthly review (warning after 31 days), yearly revision
(error after 366 days, a warning only when the service loads its rules) and the quarterly drill (warning after
92 days or never, when the caller read the drills from a store)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

from service import registries
from service.matching import loader

CATALOGUE = registries.catalogue()
TODAY = date(2026, 12, 6)
RULE = """\
name: {name}
runbook: Web Outage
runbook_url: https://runbooks.example/{name}
owner: team-web
reviewed: {reviewed}
mttr_target: 2m
match: ['alertname="WebDown"']
target: {{kind: Deployment, namespace: default, name: web}}
"""


def write_rule(directory: Path, name: str, reviewed_days_ago: int) -> Path:
    reviewed = (TODAY - timedelta(days=reviewed_days_ago)).isoformat()
    path = directory / f"{name}.yaml"
    path.write_text(RULE.format(name=name, reviewed=reviewed))
    return path


def remarks(directory: Path, drills: Mapping[str, date] | None = None) -> list[tuple[str, int, str]]:
    found = loader.lint(directory, catalogue=CATALOGUE, today=TODAY, drills=drills)
    return [(p.severity, p.line, p.message) for p in found]


def test_a_rule_reviewed_within_the_month_is_clean(tmp_path: Path) -> None:
    write_rule(tmp_path, "web", 31)
    assert remarks(tmp_path) == []


def test_a_missed_monthly_review_is_a_warning(tmp_path: Path) -> None:
    write_rule(tmp_path, "web", 366)  # late, but not yet a year and a day
    [(severity, line, message)] = remarks(tmp_path)
    assert (severity, line) == ("warning", 5)
    assert message.startswith("rule last reviewed on 2025-12-05, 366 days ago (more than 31)")


def test_a_missed_yearly_revision_is_an_error_for_lint(tmp_path: Path) -> None:
    path = write_rule(tmp_path, "web", 367)
    [problem] = loader.lint(tmp_path, catalogue=CATALOGUE, today=TODAY)
    assert str(problem) == (
        f"{path}:5: error: rule last reviewed on 2025-12-04, 367 days ago (more than 366): the runbooks ask for"
        " a yearly revision; revise the runbook and the rule, then update reviewed:"
    )


def test_an_overdue_revision_does_not_stop_the_service_loading_its_rules(tmp_path: Path) -> None:
    write_rule(tmp_path, "web", 400)
    ruleset = loader.load_rules(tmp_path, catalogue=CATALOGUE, today=TODAY)
    assert [r.name for r in ruleset.rules] == ["web"]
    [warning] = ruleset.warnings
    assert warning.severity == "warning" and "more than 366" in warning.message


def test_drills_are_checked_only_when_the_caller_read_them(tmp_path: Path) -> None:
    write_rule(tmp_path, "web", 1)
    assert remarks(tmp_path) == []  # no store, no drill check
    assert remarks(tmp_path, drills={}) == [
        (
            "warning",
            1,
            "rule 'web' was never drilled: the runbooks ask for a test every quarter; run remediator drill web",
        )
    ]


def test_a_drill_counts_for_92_days(tmp_path: Path) -> None:
    write_rule(tmp_path, "web", 1)
    write_rule(tmp_path, "api", 1)
    drills = {"web": TODAY - timedelta(days=92), "api": TODAY - timedelta(days=93), "gone": TODAY}
    [(severity, line, message)] = remarks(tmp_path, drills=drills)
    assert (severity, line) == ("warning", 1)
    assert message == (
        f"rule 'api' last drilled on {(TODAY - timedelta(days=93)).isoformat()}, 93 days ago (more than 92: the"
        " runbooks ask for a test every quarter); run remediator drill api"
    )


def test_a_broken_rule_still_gets_its_drill_warning(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("name: broken\nrunbook: B\n")
    problems = loader.lint(tmp_path, catalogue=CATALOGUE, today=TODAY, drills={})
    assert {p.severity for p in problems} == {"error", "warning"}
    assert any("never drilled" in p.message for p in problems)
