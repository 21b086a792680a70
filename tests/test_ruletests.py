"""``remediator rules test``: rule unit tests run ``decide`` on a given alert, findings and guards."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service import cli
from tests.conftest import ROOT

RULE = """\
name: web-outage
runbook: Web Outage
mttr_target: 2m
severity: critical
match:
  - alertname="WebDown"
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: web
diagnose:
  - {id: pods, probe: kube.pods}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    cooldown: 10m
  - action: kube.rollout_undo
    safety: unsafe
"""

CASE = """\
  - name: {name}
    alert: {{labels: {{alertname: WebDown, namespace: {namespace}}}}}
    findings:
      pods: {{status: failed, facts: {{crashlooping: 2}}}}
    guards: {guards}
    expect: {expect}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    write(directory, "web-outage.yaml", RULE)
    return directory


def case(name: str, expect: str, *, guards: str = "{}", namespace: str = "shop") -> str:
    return CASE.format(name=name, expect=expect, guards=guards, namespace=namespace)


def run(rules_dir: Path, *files: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["rules", "test", "--rules-dir", str(rules_dir), *map(str, files)])
    out, err = capsys.readouterr()
    return code, out, err


def test_passing_tests_exit_0_through_the_real_cli(tmp_path: Path, rules_dir: Path) -> None:
    tests = write(
        tmp_path,
        "web.test.yaml",
        "rule: web-outage\ntests:\n"
        + case("crashloop is restarted", "{apply: kube.rollout_restart, proposals: [kube.rollout_undo]}")
        + case("no crashloop, a human decides", "{apply: null, escalate: true}").replace(
            "crashlooping: 2", "crashlooping: 0"
        ),
    )
    result = subprocess.run(
        [sys.executable, "-m", "service", "rules", "test", "--rules-dir", str(rules_dir), str(tests)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"ok  {tests}: web-outage: crashloop is restarted",
        f"ok  {tests}: web-outage: no crashloop, a human decides",
        "2 passed, 0 failed",
    ]


def test_a_wrong_expectation_fails_saying_expected_and_got(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = write(
        tmp_path,
        "web.test.yaml",
        "rule: web-outage\ntests:\n"
        + case("right", "{apply: kube.rollout_restart}")
        + case("wrong", "{apply: null, proposals: [], reason_contains: nothing}"),
    )
    code, out, _ = run(rules_dir, tests, capsys=capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"ok  {tests}: web-outage: right"
    assert lines[1].startswith(
        f"FAIL {tests}: web-outage: wrong — expected apply null, got kube.rollout_restart"
    )
    assert "expected proposals [], got [kube.rollout_undo]" in lines[1]
    assert "expected reason containing 'nothing', got 'applying kube.rollout_restart'" in lines[1]
    assert lines[-1] == "1 passed, 1 failed"


def test_an_unknown_key_is_an_error_naming_it_with_its_line(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "rule: web-outage\ntests:\n" + case("typo", "{apply: null}", guards="{cooldwn_ago: 5}")
    tests = write(tmp_path, "typo.test.yaml", text)
    code, _, err = run(rules_dir, tests, capsys=capsys)
    assert code == 2
    assert f"{tests}:7: error: tests.0.guards.cooldwn_ago: unknown key 'cooldwn_ago'" in err


def test_an_unknown_rule_or_finding_id_is_an_error(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown_rule = write(tmp_path, "a.test.yaml", "rule: web-outag\ntests:\n" + case("x", "{apply: null}"))
    unknown_probe = write(
        tmp_path,
        "b.test.yaml",
        "rule: web-outage\ntests:\n" + case("x", "{apply: null}").replace("pods:", "podz:"),
    )
    broken_yaml = write(tmp_path, "c.test.yaml", "rule: web-outage\ntests: [\n")
    code, out, err = run(rules_dir, unknown_rule, unknown_probe, broken_yaml, capsys=capsys)
    assert code == 2
    assert f"{unknown_rule}:1: error: unknown rule 'web-outag' (rules: web-outage)" in err
    assert f"{unknown_probe}:6: error: tests.0.findings: 'podz' is not a probe id of rule web-outage" in err
    assert f"{broken_yaml}:3: error: YAML syntax error" in err
    assert out.splitlines()[-1] == "0 passed, 0 failed, 3 file(s) with errors"


@pytest.mark.parametrize(
    ("guards", "namespace", "guard", "reason"),
    [
        ("{last_action_ago: {kube.rollout_restart: 240}}", "shop", "cooldown", "ran 4 min ago"),
        ("{attempts: {kube.rollout_restart: 2}}", "shop", "max_attempts", "ran 2 times"),
        ("{budget_left: 0}", "shop", "budget", "budget is spent"),
        ("{paused: true}", "shop", "paused", "kill switch"),
        ("{coordination_ok: false}", "shop", "coordination_unavailable", "coordination unavailable"),
        ("{namespaces: [payments]}", "shop", "namespace", "not in REMEDIATOR_NAMESPACES"),
        ("{last_mitigated_ago: 600}", "shop", "flap", "flapping"),
        ("{blast_radius: {kube.rollout_restart: Deployment is paused}}", "shop", "blast_radius", "paused"),
        ("{acting: 5}", "shop", "storm_brake", "storm brake"),
        ("{}", "Shop_NS", "invalid_target", "invalid target"),
    ],
)
def test_guards_give_the_guard_codes_expected(
    tmp_path: Path,
    rules_dir: Path,
    capsys: pytest.CaptureFixture[str],
    guards: str,
    namespace: str,
    guard: str,
    reason: str,
) -> None:
    # An invalid target blocks the unsafe proposal too; otherwise the rollback is still proposed.
    blocked = f"{{action: kube.rollout_restart, guard: {guard}}}"
    if guard == "invalid_target":
        blocked += ", {action: kube.rollout_undo, guard: invalid_target}"
    proposals = "[]" if guard == "invalid_target" else "[kube.rollout_undo]"
    expect = (
        f"{{apply: null, escalate: true, blocked: [{blocked}], proposals: {proposals},"
        f" reason_contains: '{reason}'}}"
    )
    tests = write(
        tmp_path,
        "guards.test.yaml",
        "rule: web-outage\ntests:\n" + case(guard, expect, guards=guards, namespace=namespace),
    )
    code, out, err = run(rules_dir, tests, capsys=capsys)
    assert (code, err) == (0, ""), out
    assert out.splitlines()[0] == f"ok  {tests}: web-outage: {guard}"


def test_a_cooldown_that_has_passed_does_not_block(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = write(
        tmp_path,
        "t.test.yaml",
        "rule: web-outage\ntests:\n"
        + case(
            "cooldown over",
            "{apply: kube.rollout_restart, blocked: []}",
            guards="{last_action_ago: {kube.rollout_restart: 601}}",
        ),
    )
    assert run(rules_dir, tests, capsys=capsys)[0] == 0


def test_an_alert_the_rule_does_not_match_fails(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = write(
        tmp_path,
        "t.test.yaml",
        "rule: web-outage\ntests:\n" + case("other alert", "{apply: null}").replace("WebDown", "DbDown"),
    )
    code, out, _ = run(rules_dir, tests, capsys=capsys)
    assert code == 1
    assert "expected the alert to match rule web-outage, got no match" in out


def test_the_shipped_rule_tests_pass() -> None:
    from service import registries, ruletests
    from service.matching import loader

    files = sorted((ROOT / "rules" / "tests").glob("*.test.yaml"))
    assert len(files) >= 7, "every shipped rule has a test file"
    rules = loader.load_rules(ROOT / "rules", catalogue=registries.catalogue())
    out, err = io.StringIO(), io.StringIO()
    assert ruletests.run(files, rules, out=out, err=err) == 0, out.getvalue() + err.getvalue()


DEPENDENT = RULE.replace("name: web-outage", "name: web-outage\ndepends_on: [db-outage, db]").replace(
    "  - {id: pods, probe: kube.pods}",
    "  - {id: pods, probe: kube.pods}\n  - {id: db, probe: tcp.connect, with: {host: db, port: 5432}}",
)
DB_RULE = """\
name: db-outage
runbook: DB Outage
mttr_target: 3m
match: ['alertname="DbDown"']
target: {kind: Deployment, namespace: "{{ labels.namespace | default('default') }}", name: db}
"""


@pytest.fixture
def dependent_rules(tmp_path: Path) -> Path:
    directory = tmp_path / "dependent"
    directory.mkdir()
    write(directory, "web-outage.yaml", DEPENDENT)
    write(directory, "db-outage.yaml", DB_RULE)
    return directory


def test_a_failing_dependency_blocks_with_guard_dependency(
    tmp_path: Path, dependent_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = "{action: kube.rollout_restart, guard: dependency}"
    open_db = "dependency: db-outage incident open-db-outage is open in shop; restarting web would not help"
    db_down = "dependency: probe db (tcp.connect) failed: TCP db:5432: connection refused"
    tests = write(
        tmp_path,
        "deps.test.yaml",
        "rule: web-outage\ntests:\n"
        + case(
            "db-outage open",
            f"{{apply: null, blocked: [{blocked}], proposals: [kube.rollout_undo], reason_contains: '{open_db}'}}",
            guards="{open_incidents: [db-outage]}",
        )
        + case(
            "db probe failed", f"{{apply: null, blocked: [{blocked}], reason_contains: '{db_down}'}}"
        ).replace(
            "      pods:",
            '      db: {status: failed, summary: "TCP db:5432: connection refused"}\n      pods:',
        )
        + case("healthy", "{apply: kube.rollout_restart, blocked: []}").replace(
            "      pods:", "      db: {status: ok}\n      pods:"
        )
        + case("wrong expectation", "{apply: kube.rollout_restart}", guards="{open_incidents: [db-outage]}"),
    )
    code, out, err = run(dependent_rules, tests, capsys=capsys)
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[:3] == [
        f"ok  {tests}: web-outage: db-outage open",
        f"ok  {tests}: web-outage: db probe failed",
        f"ok  {tests}: web-outage: healthy",
    ]
    assert lines[3].startswith(
        f"FAIL {tests}: web-outage: wrong expectation — expected apply kube.rollout_restart"
    )
    assert "got null (kube.rollout_restart blocked — dependency: db-outage incident" in lines[3]


def test_an_open_incident_of_a_rule_not_depended_on_is_an_error_at_its_line(
    tmp_path: Path, dependent_rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tests = write(
        tmp_path,
        "deps.test.yaml",
        "rule: web-outage\ntests:\n"
        + case("typo", "{apply: null}", guards="{open_incidents: [db-outage, cache-outage]}"),
    )
    code, _, err = run(dependent_rules, tests, capsys=capsys)
    assert code == 2
    assert (
        f"{tests}:7: error: tests.0.guards.open_incidents: 'cache-outage' is not a rule web-outage depends on"
        " (depends_on rules: db-outage)"
    ) in err
