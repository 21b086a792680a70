"""Lint of the fields that tie rules together and to the runbooks: ``depends_on``, ``verify.advances``,
``quorum`` and ``runbook_url`` — what ``remediator rules lint`` tells a rule author, with file and line, and
what stops the service from loading a rule set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service import cli, registries
from service.matching import loader

CATALOGUE = registries.catalogue()
ROOT = Path(__file__).resolve().parents[2]

#: A small valid rule: its ``depends_on`` is on line 6, its diagnose ids are ``pods`` and ``db``.
RULE = """\
name: {name}
runbook: {name}
runbook_url: https://runbooks.example/{name}
mttr_target: 2m
match: ['alertname="{name}"']
depends_on: {depends_on}
target: {{name: coordinator}}
diagnose:
  - {{id: pods, probe: kube.pods}}
  - {{id: db, probe: tcp.connect, with: {{host: postgresql, port: 5432}}}}
remediate:
  - action: {action}
    safety: safe
    verify: {{probe: pods, advances: {advances}}}
    quorum: {quorum}
"""


def rule(
    name: str,
    depends_on: str = "[]",
    *,
    action: str = "kube.rollout_restart",
    advances: str = "[]",
    quorum: str = "null",
) -> str:
    return RULE.format(name=name, depends_on=depends_on, action=action, advances=advances, quorum=quorum)


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def problems(directory: Path) -> list[tuple[str, int, str, str]]:
    return [
        (Path(p.file).name, p.line, p.severity, p.message)
        for p in loader.lint(directory, catalogue=CATALOGUE)
    ]


# ---- depends_on ---------------------------------------------------------------------------------------------


def test_own_probe_ids_and_rules_of_the_set_are_valid_dependencies(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "coordinator.yaml": rule("coordinator", "[database, cache, db]"),
            "database.yaml": rule("database"),
            "cache.yaml": rule("cache"),
        },
    )
    assert problems(tmp_path) == []
    coordinator = loader.load_rules(tmp_path, catalogue=CATALOGUE).by_name("coordinator")
    assert coordinator is not None
    assert coordinator.rule.dependency_rules() == ["database", "cache"]
    assert coordinator.rule.dependency_probes() == ["db"]


def test_an_unknown_dependency_is_an_error_naming_the_entry_and_its_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"coordinator.yaml": rule("coordinator", "[db, databse]"), "database.yaml": rule("database")},
    )
    assert problems(tmp_path) == [
        (
            "coordinator.yaml",
            6,
            "error",
            "depends_on[1]: 'databse' is neither a probe id of this rule nor a rule in the set"
            " (did you mean 'database'?)",
        )
    ]


def test_the_service_refuses_to_load_a_rule_set_with_an_unknown_dependency(tmp_path: Path) -> None:
    # as loaded by `serve` and `rules test`: the same file:line error, and no rule of the set is served
    write(tmp_path, {"coordinator.yaml": rule("coordinator", "[redis-failure]")})
    with pytest.raises(loader.RuleLoadError) as caught:
        loader.load_rules(tmp_path, catalogue=CATALOGUE)
    assert str(caught.value) == (
        f"{tmp_path / 'coordinator.yaml'}:6: error: depends_on[0]: 'redis-failure' is neither a probe id of"
        " this rule nor a rule in the set"
    )


def test_a_dependency_on_a_rule_that_fails_to_load_is_not_reported_twice(tmp_path: Path) -> None:
    broken = rule("database").replace("mttr_target: 2m", "mttr_target: soon")
    write(tmp_path, {"coordinator.yaml": rule("coordinator", "[database]"), "database.yaml": broken})
    [(file, line, severity, message)] = problems(tmp_path)
    assert (file, line, severity) == ("database.yaml", 4, "error")
    assert message.startswith("mttr_target: invalid duration 'soon'")


def test_a_rule_may_not_depend_on_itself(tmp_path: Path) -> None:
    write(tmp_path, {"coordinator.yaml": rule("coordinator", "[coordinator]")})
    assert problems(tmp_path) == [
        (
            "coordinator.yaml",
            6,
            "error",
            "depends_on[0]: 'coordinator' is this rule: a rule may not depend on itself",
        )
    ]


def test_a_dependency_cycle_is_an_error_naming_the_cycle(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": rule("a", "[c]"),
            "b.yaml": rule("b", "[a]"),
            "c.yaml": rule("c", "[b]"),
            "d.yaml": rule("d", "[a]"),  # depends on the cycle, is not part of it: not reported
        },
    )
    assert problems(tmp_path) == [
        (
            "a.yaml",
            6,
            "error",
            "depends_on: dependency cycle a -> c -> b -> a; each would wait for the other to recover",
        )
    ]
    with pytest.raises(loader.RuleLoadError, match="dependency cycle a -> c -> b -> a"):
        loader.load_rules(tmp_path, catalogue=CATALOGUE)


def test_each_cycle_is_reported_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "p.yaml": rule("p", "[q]"),
            "q.yaml": rule("q", "[p]"),
            "x.yaml": rule("x", "[db, y]"),
            "y.yaml": rule("y", "[x]"),
        },
    )
    assert [(file, message) for file, _, _, message in problems(tmp_path)] == [
        ("p.yaml", "depends_on: dependency cycle p -> q -> p; each would wait for the other to recover"),
        ("x.yaml", "depends_on: dependency cycle x -> y -> x; each would wait for the other to recover"),
    ]


# ---- verify.advances ----------------------------------------------------------------------------------------


def test_advances_must_name_a_diagnose_id(tmp_path: Path) -> None:
    write(tmp_path, {"chain.yaml": rule("chain", advances="[pods.ready, consensus.height]")})
    assert problems(tmp_path) == [
        (
            "chain.yaml",
            14,
            "error",
            "remediate[0].verify.advances[1]: 'consensus.height': 'consensus' names no diagnose id"
            " (known: pods, db)",
        )
    ]


def test_advances_must_be_probe_id_dot_fact(tmp_path: Path) -> None:
    write(tmp_path, {"chain.yaml": rule("chain", advances="[height]")})
    [(_, line, severity, message)] = problems(tmp_path)
    assert (line, severity) == (14, "error")
    assert message.startswith("remediate[0].verify.advances: advances entry 'height' must be probe_id.fact")


# ---- quorum -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["kube.rollout_restart", "kube.delete_pods", "kube.evict_pod"])
def test_quorum_is_accepted_on_actions_that_take_pods_down(tmp_path: Path, action: str) -> None:
    safety = "safe" if action != "kube.delete_pods" else "unsafe"
    text = rule("chain", action=action, quorum="2").replace("safety: safe", f"safety: {safety}")
    write(tmp_path, {"chain.yaml": text})
    assert problems(tmp_path) == []
    [spec] = loader.load_rules(tmp_path, catalogue=CATALOGUE).rules[0].rule.remediate
    assert spec.quorum == 2


def test_quorum_on_an_action_that_takes_no_pod_down_is_an_error(tmp_path: Path) -> None:
    text = rule("chain", action="kube.scale", quorum="2").replace(
        "    safety: safe\n", "    safety: safe\n    with: {replicas: 3, max: 3}\n"
    )
    write(tmp_path, {"chain.yaml": text})
    assert problems(tmp_path) == [
        (
            "chain.yaml",
            16,
            "error",
            "remediate[0].quorum: quorum applies only to actions that restart or delete a workload's pods"
            " (kube.delete_pods, kube.evict_pod, kube.rollout_restart); kube.scale does not",
        )
    ]


# ---- runbook_url --------------------------------------------------------------------------------------------


def test_a_rule_without_runbook_url_is_a_warning_that_does_not_stop_loading(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "coordinator.yaml": rule("coordinator").replace(
                "runbook_url: https://runbooks.example/coordinator\n", ""
            )
        },
    )
    assert problems(tmp_path) == [
        (
            "coordinator.yaml",
            2,
            "warning",
            "no runbook_url: add the link to the runbook's page; bundles, pages and reports link it",
        )
    ]
    ruleset = loader.load_rules(tmp_path, catalogue=CATALOGUE)
    assert [r.name for r in ruleset.rules] == ["coordinator"]
    assert [w.message.split(":")[0] for w in ruleset.warnings] == ["no runbook_url"]


# ---- the command --------------------------------------------------------------------------------------------


def test_rules_lint_prints_errors_and_warnings_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_url = rule("cache").replace("runbook_url: https://runbooks.example/cache\n", "")
    write(tmp_path, {"coordinator.yaml": rule("coordinator", "[db, databse]"), "cache.yaml": no_url})
    assert cli.main(["rules", "lint", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{tmp_path / 'cache.yaml'}:2: warning: no runbook_url: add the link to the runbook's page; bundles,"
        " pages and reports link it",
        f"{tmp_path / 'coordinator.yaml'}:6: error: depends_on[1]: 'databse' is neither a probe id of this rule"
        " nor a rule in the set",
    ]
    assert err.strip() == "1 error(s)"


#: ``remediator serve`` on a port nothing listens on (it exits before binding when the rules are invalid)
SERVE = [sys.executable, "-m", "service", "serve", "--listen", "127.0.0.1:18097"]


def test_serve_refuses_a_rule_set_with_an_unknown_dependency(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    write(rules_dir, {"coordinator.yaml": rule("coordinator", "[db, database-failure]")})
    result = subprocess.run(
        [*SERVE, "--rules-dir", str(rules_dir), "--store-url", f"sqlite:///{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-2:] == [
        f"remediator: rules in {rules_dir} are invalid:",
        f"{rules_dir / 'coordinator.yaml'}:6: error: depends_on[1]: 'database-failure' is neither a probe id of"
        " this rule nor a rule in the set",
    ]
