"""Loading and linting rule directories: what ``remediator rules lint`` shows a rule author."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pydantic
import pytest

from service import registries
from service.matching import catalogue, loader

CATALOGUE = registries.catalogue()

DESIGN_EXAMPLE = """\
name: coordinator-api-outage
runbook: Coordinator API Outage          # human title, shown in bundles
mttr_target: 2m
severity: critical
match:                                   # Alertmanager matcher syntax, all must hold; list under any: for OR
  - alertname=~"CoordinatorDown|CoordinatorHighErrorRate"
target:                                  # rendered from the alert; every name must be a valid DNS-1123 name
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: coordinator
  selector: app.kubernetes.io/name=coordinator   # may be templated; rendered values must be valid label values
diagnose:
  - {id: pods,   probe: kube.pods}
  - {id: health, probe: http.get, with: {url: "http://coordinator.{{ target.namespace }}:8011/v1/health"}}
  - {id: db,     probe: tcp.connect, with: {host: postgresql, port: 5432}}
  - {id: usage,  probe: kube.resources}
remediate:                               # in order; the first whose `when` holds and guards allow is applied
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0 || findings.health.status == "failed"   # CEL
    cooldown: 10m
    max_attempts: {count: 2, per: 1h}
    verify: {probe: health, within: 90s}
  - action: kube.scale
    safety: safe
    with: {replicas: 5, max: 5}
    when: findings.usage.status == "degraded" && findings.pods.facts.crashlooping == 0
  - action: kube.rollout_undo
    safety: unsafe                       # never automatic: proposed to a human, runnable after approval
suggest:                                 # runbook commands for humans; every {{ }} value is shell-quoted
  - kubectl rollout restart deployment/{{ target.name }} -n {{ target.namespace }}
"""

HEAD = """\
name: {name}
runbook: Broken rule
mttr_target: 2m
match:
  - alertname="X"
target:
  name: coordinator
"""

#: file name -> (text, line of the one error, what the message must say)
BROKEN: dict[str, tuple[str, int, str]] = {
    "01-unknown-field.yaml": (
        HEAD + "  namespce: shop\n",
        8,
        "target: unknown field 'namespce' (did you mean 'namespace'?)",
    ),
    "02-bad-matcher.yaml": (
        HEAD.replace('alertname="X"', 'alertname="X') + "",
        5,
        "match[0]: bad matcher 'alertname=\"X': missing closing double quote",
    ),
    "03-bad-regex.yaml": (
        HEAD.replace('  - alertname="X"\n', '  - severity="critical"\n  - alertname=~"Coord("\n'),
        6,
        "match[1]: bad regex in matcher 'alertname=~\"Coord(\"': missing ), unterminated subpattern",
    ),
    "04-bad-template.yaml": (
        HEAD + '  namespace: "{{ labels.namespace "\n',
        8,
        "target.namespace: bad template '{{ labels.namespace ': unexpected end of template",
    ),
    "05-unknown-probe.yaml": (
        HEAD + "diagnose:\n  - {id: pods, probe: kube.pods}\n  - id: health\n    probe: http.gett\n",
        11,
        "diagnose[1].probe: unknown probe 'http.gett' (did you mean 'http.get'?)",
    ),
    "06-unknown-action.yaml": (
        HEAD + "remediate:\n  - action: kube.restart\n    safety: safe\n",
        9,
        "remediate[0].action: unknown action 'kube.restart'",
    ),
    "07-bad-cel.yaml": (
        HEAD
        + "remediate:\n  - action: kube.rollout_restart\n    safety: safe\n    when: findings.pods.status ==\n",
        11,
        "remediate[0].when: bad CEL: Failed to parse expression 'findings.pods.status =='",
    ),
    "08-yaml-syntax.yaml": (
        "name: yaml-syntax\nrunbook: R\nmttr_target: 2m: x\n",
        3,
        "YAML syntax error: mapping values are not allowed",
    ),
    "09-safe-approval-only.yml": (
        HEAD
        + "remediate:\n  - action: kube.rollout_restart\n    safety: safe\n  - action: kube.rollout_undo\n"
        "    safety: safe\n",
        12,
        "remediate[1].safety: kube.rollout_undo is approval-only and cannot be safety: safe",
    ),
    "10-bad-template-in-with.yaml": (
        HEAD + "diagnose:\n  - id: health\n    probe: http.get\n    with:\n      url: http://x\n"
        "      headers: {X-Ns: '{% if %}'}\n",
        13,
        "diagnose[0].with.headers.X-Ns: bad template '{% if %}'",
    ),
    "11-bad-template-in-suggest.yaml": (
        HEAD + "suggest:\n  - kubectl get pods\n  - command: kubectl logs {{ labels.pod }\n",
        10,
        "suggest[1].command: bad template 'kubectl logs {{ labels.pod }'",
    ),
}


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def lint_errors(directory: Path, **kwargs: Any) -> list[loader.LintError]:
    """What ``rules lint`` reports as errors (warnings, such as a missing ``runbook_url``, are tested apart)."""
    return [problem for problem in loader.lint(directory, **kwargs) if problem.severity == "error"]


def test_design_example_loads_without_a_single_lint_error(tmp_path: Path) -> None:
    write(tmp_path, {"coordinator.yaml": DESIGN_EXAMPLE})
    # the example predates runbook_url: its only remark is a warning, which never stops loading
    assert [
        (p.severity, p.line, p.message.split(":")[0]) for p in loader.lint(tmp_path, catalogue=CATALOGUE)
    ] == [("warning", 2, "no runbook_url")]
    ruleset = loader.load_rules(tmp_path, catalogue=CATALOGUE, today=date(2024, 5, 1))
    rule = ruleset.by_name("coordinator-api-outage")
    assert rule is not None
    assert ruleset.rules == (rule,)
    assert rule.file == str(tmp_path / "coordinator.yaml")
    assert sorted(rule.conditions) == [0, 1]
    assert [p.tree for p in rule.remediate_params][1] == {"replicas": 5, "max": 5}
    assert rule.matches({"alertname": "CoordinatorHighErrorRate"})
    assert not rule.matches({"alertname": "CoordinatorDownstream"})
    assert ruleset.by_name("nope") is None


def test_lint_reports_file_and_line_of_every_broken_rule(tmp_path: Path) -> None:
    for index, (name, (text, _, _)) in enumerate(BROKEN.items()):
        (tmp_path / name).write_text(text.replace("{name}", f"broken-{index}"))
    errors = lint_errors(tmp_path, catalogue=CATALOGUE, today=date(2024, 5, 1))
    assert [(Path(e.file).name, e.line) for e in errors] == [
        (name, line) for name, (_, line, _) in BROKEN.items()
    ]
    for error, (_, _, message) in zip(errors, BROKEN.values(), strict=True):
        assert error.severity == "error"
        assert error.message.startswith(message), error


def test_load_rules_raises_with_every_error_one_per_line(tmp_path: Path) -> None:
    for index, (name, (text, _, _)) in enumerate(BROKEN.items()):
        (tmp_path / name).write_text(text.replace("{name}", f"broken-{index}"))
    with pytest.raises(loader.RuleLoadError) as caught:
        loader.load_rules(tmp_path, catalogue=CATALOGUE)
    lines = str(caught.value).splitlines()
    assert len(caught.value.errors) == len(BROKEN)
    first = tmp_path / "01-unknown-field.yaml"
    assert lines[0] == f"{first}:8: error: target: unknown field 'namespce' (did you mean 'namespace'?)"


def test_one_file_reports_all_its_errors(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "many.yaml": """\
name: many-problems
runbook: R
mttr_target: soon
colour: blue
match:
  - alertname="X
  - any:
      - severity=~"("
      - [alertname="Y", team=]
target:
  name: "{{ labels.name }"
diagnose:
  - {id: pods, probe: kube.pods}
  - {id: pods, probe: kube.pod}
remediate:
  - action: kube.rollout_restart
    safety: sometimes
    when: findings.pods.status = "failed"
    verify: {probe: health}
"""
        },
    )
    found = [(e.line, e.message.split(":")[0]) for e in lint_errors(tmp_path, catalogue=CATALOGUE)]
    assert found == [
        (3, "mttr_target"),
        (4, "unknown field 'colour'"),
        (6, "match[0]"),
        (8, "match[1].any[0]"),
        (11, "target.name"),
        (14, "diagnose[1].id"),
        (14, "diagnose[1].probe"),
        (17, "remediate[0].safety"),
        (18, "remediate[0].when"),
        (19, "remediate[0].verify.probe"),
    ]


def test_missing_field_points_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "missing.yaml": """\
name: missing-fields
mttr_target: 2m
match: [alertname="X"]
target:
  namespace: shop
remediate:
  - action: kube.rollout_restart
"""
        },
    )
    assert [(e.line, e.message) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (1, "runbook: required field is missing"),
        (4, "target.name: required field is missing"),
        (7, "remediate[0].safety: required field is missing"),
    ]


def test_wrong_type_is_reported_at_its_key(tmp_path: Path) -> None:
    write(tmp_path, {"types.yaml": HEAD.format(name="types") + "severity: urgent\ndiagnose: {id: pods}\n"})
    assert [(e.line, e.message) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (8, "severity: Input should be 'critical', 'high', 'warning' or 'info' (got 'urgent')"),
        (9, "diagnose: Input should be a valid list"),
    ]


def test_constant_target_fields_are_checked_at_load(tmp_path: Path) -> None:
    text = HEAD.format(name="const").replace("name: coordinator", "name: Coordinator\n  selector: '*'")
    write(tmp_path, {"const.yaml": text})
    assert [(e.line, e.message.split(":")[0]) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (7, "target.name"),
        (8, "target.selector"),
    ]


def test_match_mapping_gets_a_hint(tmp_path: Path) -> None:
    write(tmp_path, {"hint.yaml": HEAD.format(name="hint").replace('- alertname="X"', "- alertname: X")})
    assert [(e.line, e.message) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (5, 'match[0]: expected a matcher string; for "alertname: X" write alertname="X"'),
    ]


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    write(tmp_path, {"dup.yaml": HEAD.format(name="dup") + "severity: high\nseverity: critical\n"})
    assert [(e.line, e.message) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (9, "duplicate key 'severity' (first at line 8)"),
    ]


def test_duplicate_rule_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": HEAD.format(name="same"), "b.yaml": "# comment\n" + HEAD.format(name="same")})
    errors = lint_errors(tmp_path, catalogue=CATALOGUE)
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'b.yaml'}:2: error: duplicate rule name 'same' (also in {tmp_path / 'a.yaml'}:1)"
    ]


def test_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, {"list.yaml": "- name: x\n", "empty.yaml": "# nothing yet\n"})
    assert [(Path(e.file).name, e.line, e.message) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        ("empty.yaml", 1, "empty rule file: expected one rule (name:, match:, target:, …)"),
        ("list.yaml", 1, "a rule file holds one mapping (name:, match:, target:, …), got list"),
    ]


def test_two_documents_in_one_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"two.yaml": HEAD.format(name="one") + "---\n" + HEAD.format(name="two")})
    [error] = lint_errors(tmp_path, catalogue=CATALOGUE)
    assert (error.line, error.message) == (
        8,
        "YAML syntax error: but found another document (expected a single document in the stream at line 1)",
    )


def test_any_syntax_from_the_brief(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "any.yaml": """\
name: coordinator-errors
runbook: R
mttr_target: 2m
match:
  - severity=~"critical|high"
  - any:
      - alertname="CoordinatorDown"
      - [alertname="HighErrorRate", service="coordinator"]
target: {name: coordinator}
"""
        },
    )
    rule = loader.load_rules(tmp_path, catalogue=CATALOGUE).rules[0]
    assert rule.matches({"alertname": "CoordinatorDown", "severity": "high"})
    assert rule.matches({"alertname": "HighErrorRate", "service": "coordinator", "severity": "critical"})
    assert not rule.matches({"alertname": "HighErrorRate", "service": "billing", "severity": "critical"})
    assert not rule.matches({"alertname": "CoordinatorDown", "severity": "warning"})


@pytest.mark.parametrize("any_value", ["[]", "x", "[[]]", "[[a=b, 5]]"])
def test_bad_any_is_an_error(tmp_path: Path, any_value: str) -> None:
    text = HEAD.format(name="bad-any").replace('- alertname="X"', f"- any: {any_value}")
    write(tmp_path, {"any.yaml": text})
    [error] = lint_errors(tmp_path, catalogue=CATALOGUE)
    assert error.line == 5
    assert error.message.startswith("match[0].any")


def test_verify_must_name_a_diagnose_id(tmp_path: Path) -> None:
    text = HEAD.format(name="verify") + (
        "diagnose:\n  - {id: pods, probe: kube.pods}\nremediate:\n  - action: kube.rollout_restart\n    safety: safe\n"
        "    verify: {probe: health}\n"
    )
    write(tmp_path, {"verify.yaml": text})
    assert [(e.line, e.message) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (13, "remediate[0].verify.probe: 'health' names no diagnose id (known: pods)")
    ]


def test_review_age_warning_uses_the_given_day_and_does_not_block_loading(tmp_path: Path) -> None:
    text = HEAD.format(name="old") + "reviewed: 2024-03-01\nrunbook_url: https://runbooks.example/old\n"
    write(tmp_path, {"old.yaml": text})
    assert loader.lint(tmp_path, catalogue=CATALOGUE, today=date(2024, 4, 1)) == []  # 31 days: still fine
    [warning] = loader.lint(tmp_path, catalogue=CATALOGUE, today=date(2024, 4, 2))
    assert str(warning) == (
        f"{tmp_path / 'old.yaml'}:8: warning: rule last reviewed on 2024-03-01, 32 days ago (more than 31);"
        " review it and update reviewed:"
    )
    ruleset = loader.load_rules(tmp_path, catalogue=CATALOGUE, today=date(2024, 4, 2))
    assert len(ruleset) == 1
    assert ruleset.warnings == (warning,)


def test_files_load_in_name_order_and_other_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(
        tmp_path,
        {
            "b.yml": HEAD.format(name="second"),
            "a.yaml": HEAD.format(name="first"),
            "c.yaml.bak": "not: [yaml",
            ".hidden.yaml": "not: [yaml",
            "sub/d.yaml": "not: [yaml",
            "README.md": "# rules",
        },
    )
    assert [rule.name for rule in loader.load_rules(tmp_path, catalogue=CATALOGUE).rules] == [
        "first",
        "second",
    ]


def test_empty_directory_gives_an_empty_ruleset(tmp_path: Path) -> None:
    ruleset = loader.load_rules(tmp_path, catalogue=CATALOGUE)
    assert ruleset.rules == ()
    assert ruleset.by_name("anything") is None


def test_missing_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-rules"
    with pytest.raises(loader.RuleLoadError, match="no-such-rules' does not exist"):
        loader.load_rules(missing, catalogue=CATALOGUE)
    assert [e.message for e in loader.lint(missing, catalogue=CATALOGUE)] == [
        f"rules directory {str(missing)!r} does not exist"
    ]


def test_parse_rule_raises_with_lines() -> None:
    with pytest.raises(loader.RuleLoadError) as caught:
        loader.parse_rule(HEAD.format(name="x") + "  bogus: 1\n", file="inline.yaml")
    assert str(caught.value) == "inline.yaml:8: error: target: unknown field 'bogus'"


ACTION_PARAMS = (
    HEAD.format(name="params")
    + """\
remediate:
  - action: kube.scale
    safety: safe
    with: {replicas: many, max: 5}
  - action: kube.rollout_restart
    safety: safe
    with:
      allow_single_replicas: true
  - action: kube.scale
    safety: safe
    with: {replicas: "{{ labels.replicas }}", max: 5}
"""
)


def test_action_params_are_checked_against_their_model_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {"params.yaml": ACTION_PARAMS})
    assert [(e.line, e.message.split(": Input")[0]) for e in lint_errors(tmp_path, catalogue=CATALOGUE)] == [
        (11, "remediate[0].with.replicas: bad params for kube.scale"),
        (
            15,
            "remediate[1].with.allow_single_replicas: bad params for kube.rollout_restart: Extra inputs are"
            " not permitted",
        ),
    ], "a templated value (remediate[2]) is checked when it is rendered"


def test_a_bad_action_param_stops_rule_loading(tmp_path: Path) -> None:
    write(tmp_path, {"params.yaml": ACTION_PARAMS})
    with pytest.raises(loader.RuleLoadError) as caught:
        loader.load_rules(tmp_path, catalogue=CATALOGUE)
    assert [(Path(e.file).name, e.line) for e in caught.value.errors] == [
        ("params.yaml", 11),
        ("params.yaml", 15),
    ]


def test_names_and_safety_come_from_the_catalogue_handed_in(tmp_path: Path) -> None:
    class Params(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        depth: int

    custom = catalogue.Catalogue(
        probes={"custom.probe": Params},
        actions={"custom.act": catalogue.KnownAction(Params, safe_capable=False)},
    )
    text = HEAD.format(name="custom") + (
        "diagnose:\n  - {id: c, probe: custom.probe, with: {depth: 1}}\n  - {id: p, probe: kube.pods}\n"
        "remediate:\n  - {action: custom.act, safety: unsafe, with: {depth: 2}}\n"
        "  - {action: custom.act, safety: safe, with: {depth: x}}\n"
    )
    write(tmp_path, {"custom.yaml": text})
    assert [(e.line, e.message.split(" (")[0]) for e in lint_errors(tmp_path, catalogue=custom)] == [
        (10, "diagnose[1].probe: unknown probe 'kube.pods'"),
        (
            13,
            "remediate[1].safety: custom.act is approval-only and cannot be safety: safe; use safety: unsafe"
            " to propose it to a human",
        ),
        (
            13,
            "remediate[1].with.depth: bad params for custom.act: Input should be a valid integer, unable to"
            " parse string as an integer",
        ),
    ]
