"""The shipped rules (rules/*.yaml), their Prometheus alerts (rules/alerts) and unit tests (rules/tests).

Runs the real tools as an operator would: ``remediator rules lint rules``, ``promtool check rules`` and
``remediator rules test``; then checks what every shipped rule must carry (a test file, owner, review date,
runbook_url, the runbooks' 12-item checklist in its three bands), the AITBC dependency graph and quorum,
and that the runbook commands nothing may automate are only ever suggested, with their hazard.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from service.model import rules

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
ALERTS = RULES / "alerts"
RULE_TESTS = RULES / "tests"
_SCRIPT = Path(sys.executable).with_name("remediator")
#: The ``remediator`` command of this environment (``python -m service`` is the same CLI).
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "service"]

#: Runbook commands that no rule may run automatically: each may appear only as a suggestion with a hazard.
DANGEROUS = (
    "iptables -F",
    "xargs redis-cli del",
    "--force --grace-period=0",
    "docker system prune",
    "pg_ctl promote",
)

#: Actions that are the automated form of a dangerous command; never ``safety: safe`` in a shipped rule.
APPROVAL_ONLY = ("kube.rollout_undo", "kube.delete_pods", "kube.expand_pvc", "postgres.promote_replica")

#: The AITBC runbooks' post-incident checklist, written out here (not imported) so that a change of the loader
#: default is caught too: three time bands of four items.
CHECKLIST = {
    "immediate": [
        "Service fully restored",
        "Monitoring normal",
        "Status page updated",
        "Stakeholders notified",
    ],
    "short_term": [
        "Incident document created",
        "Root cause identified",
        "Runbooks updated",
        "Post-mortem scheduled",
    ],
    "long_term": ["Post-mortem completed", "Action items assigned", "Monitoring improved", "Process updated"],
}

#: The AITBC runbooks' page; each AITBC rule links its own section.
RUNBOOKS = "https://github.com/oib/AITBC/blob/main/docs/operator/incident-runbooks.md"

#: The six AITBC runbook rules and their MTTR targets (seconds).
AITBC = {
    "coordinator-api-outage": 120,
    "network-partition": 300,
    "database-failure": 180,
    "redis-failure": 120,
    "high-cpu-memory": 300,
    "storage-issues": 600,
}


#: Every rule file shipped in rules/: the six AITBC runbooks and the generic HTTP error-rate rule.
SHIPPED = {*AITBC, "high-error-rate"}


def _rule_files() -> list[Path]:
    """The shipped rule files, as the loader finds them (``*.yaml`` and ``*.yml``); never none."""
    files = sorted(p for p in RULES.iterdir() if p.suffix in {".yaml", ".yml"} and not p.name.startswith("."))
    assert {p.stem for p in files} == SHIPPED, f"rules/ holds {[p.name for p in files]}"
    return files


def _alert_files() -> list[Path]:
    files = sorted(ALERTS.glob("*.y*ml"))
    assert [p.name for p in files] == ["aitbc.yaml"], f"rules/alerts holds {[p.name for p in files]}"
    return files


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: expected a mapping"
    return data


def _rules() -> dict[str, tuple[Path, dict[str, Any]]]:
    return {(data := _load(path))["name"]: (path, data) for path in _rule_files()}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _suggestions(rule: dict[str, Any]) -> list[tuple[str, str | None]]:
    out = []
    for item in rule.get("suggest") or []:
        if isinstance(item, str):
            out.append((item, None))
        else:
            out.append((str(item.get("command", "")), item.get("hazard")))
    return out


def _strings(node: Any) -> list[str]:
    """Every string inside ``node`` (keys and values), to look for dangerous commands anywhere."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def test_lint_is_clean() -> None:
    result = _run(*CLI, "rules", "lint", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ": error:" not in result.stdout + result.stderr
    assert "no runbook_url" not in result.stdout, result.stdout
    assert f"ok: {len(_rule_files())} rule file(s)" in result.stdout


def test_promtool_checks_the_alerting_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with the Debian prometheus package (scripts/install-system-deps.sh)"
    files = [str(p.relative_to(ROOT)) for p in _alert_files()]
    result = _run(promtool, "check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_six_runbook_rules_are_shipped_with_their_mttr() -> None:
    rules = _rules()
    missing = sorted(set(AITBC) - set(rules))
    assert not missing, f"missing AITBC rules: {missing}"
    units = {"s": 1, "m": 60, "h": 3600}
    for name, seconds in AITBC.items():
        mttr = str(rules[name][1]["mttr_target"])
        match = re.fullmatch(r"(\d+)([smh])", mttr)
        assert match, f"{name}: mttr_target {mttr!r}"
        assert int(match[1]) * units[match[2]] == seconds, f"{name}: mttr_target {mttr}"


def test_every_alertname_a_rule_matches_is_raised_by_the_alerting_rules() -> None:
    raised = {
        rule["alert"]
        for path in _alert_files()
        for group in _load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    for name in AITBC:
        path, rule = _rules()[name]
        matchers = _strings(rule["match"])
        names: set[str] = set()
        for matcher in matchers:
            found = re.fullmatch(r'\s*alertname\s*(=~|=)\s*"([^"]*)"\s*', matcher)
            if found:
                names |= set(found[2].split("|"))
        assert names, f"{path.name}: no alertname matcher"
        assert names <= raised, f"{path.name}: no alerting rule raises {sorted(names - raised)}"


def test_every_alert_carries_severity_and_a_runbook() -> None:
    for path in _alert_files():
        for group in _load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                assert rule.get("labels", {}).get("severity") in {"critical", "high", "warning", "info"}, (
                    f"{path.name}: {rule['alert']} has no severity"
                )
                assert rule.get("annotations", {}).get("runbook"), (
                    f"{path.name}: {rule['alert']} has no runbook"
                )


def test_every_shipped_rule_has_a_test_file() -> None:
    tested = {_load(path).get("rule") for path in RULE_TESTS.glob("*.yaml")}
    untested = sorted(set(_rules()) - tested)
    assert not untested, f"rules without a test file in rules/tests: {untested}"


def test_every_shipped_rule_has_owner_review_and_runbook_url() -> None:
    for path, rule in _rules().values():
        assert rule.get("owner"), f"{path.name}: no owner"
        assert rule.get("reviewed"), f"{path.name}: no reviewed date"
        assert str(rule.get("runbook_url", "")).startswith("https://"), f"{path.name}: no runbook_url"
    for name in AITBC:
        path, rule = _rules()[name]
        assert rule["runbook_url"].startswith(RUNBOOKS + "#runbook-"), f"{path.name}: {rule['runbook_url']}"


def test_every_shipped_rule_carries_the_runbooks_twelve_item_checklist_in_its_three_bands() -> None:
    for path, data in _rules().values():
        assert data.get("checklist") == CHECKLIST, f"{path.name}: not the runbooks' checklist, band by band"
        checklist = rules.Rule.model_validate(data).checklist
        assert checklist == rules.DEFAULT_CHECKLIST, f"{path.name}: differs from the loader's default"
        items = checklist.items()
        assert [(item.band, item.text) for item in items] == [
            (band, text) for band, texts in CHECKLIST.items() for text in texts
        ]
        assert len({item.id for item in items}) == 12
    # a rule that writes no checklist gets the same twelve items
    assert rules.DEFAULT_CHECKLIST.model_dump() == CHECKLIST


def test_the_aitbc_dependency_graph_is_declared() -> None:
    by_name = {name: rules.Rule.model_validate(data) for name, (_, data) in _rules().items()}
    coordinator = by_name["coordinator-api-outage"]
    assert coordinator.dependency_rules() == ["database-failure", "redis-failure"]
    assert coordinator.dependency_probes() == ["db", "redis"]
    probes = {probe.id: probe.probe for probe in coordinator.diagnose}
    assert (probes["db"], probes["redis"]) == ("tcp.connect", "redis.ping")
    # the network is what consensus depends on: the cluster DNS that resolves the nodes
    partition = by_name["network-partition"]
    assert partition.dependency_probes() == ["dns"]
    assert {probe.id: probe.probe for probe in partition.diagnose}["dns"] == "dns.resolve"
    for rule in by_name.values():
        assert set(rule.dependency_rules()) <= set(by_name), f"{rule.name}: depends on an unknown rule"


def test_network_partition_restarts_only_with_quorum_and_verifies_consensus_advancing() -> None:
    partition = rules.Rule.model_validate(_rules()["network-partition"][1])
    [restart] = [step for step in partition.remediate if step.action == "kube.rollout_restart"]
    assert restart.safety == "safe"
    assert restart.quorum == 2
    assert restart.verify is not None
    assert restart.verify.probe == "peers"
    assert restart.verify.advances == ["consensus.height"]
    consensus = {probe.id: probe for probe in partition.diagnose}["consensus"]
    assert consensus.params["facts"] == {"height": "height"}


def test_dangerous_commands_are_only_suggested_with_a_hazard() -> None:
    suggested: set[str] = set()
    for path, rule in _rules().values():
        for command, hazard in _suggestions(rule):
            dangers = [danger for danger in DANGEROUS if danger in command]
            assert not dangers or (hazard and hazard.strip()), (
                f"{path.name}: {command!r} is suggested without a hazard"
            )
            suggested.update(dangers)
    # each is a runbook command that the runbooks do tell a human to run: a rule must offer it
    assert suggested == set(DANGEROUS), f"never suggested: {sorted(set(DANGEROUS) - suggested)}"


def test_no_rule_automates_a_dangerous_command() -> None:
    for path, rule in _rules().values():
        automated = [step for step in rule.get("remediate") or [] if step.get("safety") == "safe"]
        for step in automated:
            assert step["action"] not in APPROVAL_ONLY, f"{path.name}: {step['action']} is safe"
            assert step.get("verify"), f"{path.name}: safe {step['action']} has no verify"
            assert step.get("reason"), f"{path.name}: safe {step['action']} has no reason"
        everything_but_suggest = {k: v for k, v in rule.items() if k not in {"suggest", "description"}}
        for text in _strings(everything_but_suggest):
            for danger in DANGEROUS:
                assert danger not in text, f"{path.name}: {danger!r} outside suggest"
        for step in rule.get("remediate") or []:
            assert step.get("reason"), f"{path.name}: {step['action']} has no reason"


def test_rule_unit_tests_pass() -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in RULE_TESTS.glob("*.yaml"))
    assert files
    result = _run(*CLI, "rules", "test", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
