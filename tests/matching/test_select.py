"""Which rule takes an alert: the first match in file-name order, found through the alertname index."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from service import registries
from service.matching import loader, select

CATALOGUE = registries.catalogue()


def rule_text(name: str, match: list[object]) -> str:
    data = {"name": name, "runbook": name, "mttr_target": "1m", "match": match, "target": {"name": "x"}}
    return yaml.safe_dump(data)


def load(tmp_path: Path, rules: dict[str, list[object]]) -> loader.RuleSet:
    for file_name, match in rules.items():
        (tmp_path / f"{file_name}.yaml").write_text(rule_text(file_name, match))
    return loader.load_rules(tmp_path, catalogue=CATALOGUE)


def test_first_matching_rule_in_file_name_order_wins(tmp_path: Path) -> None:
    ruleset = load(
        tmp_path,
        {
            "30-generic": ['severity="critical"'],
            "10-coordinator": ['alertname="CoordinatorDown"', 'namespace="shop"'],
            "20-coordinator-any-ns": ['alertname="CoordinatorDown"'],
        },
    )
    pick = select.select_rule
    found = pick(ruleset, {"alertname": "CoordinatorDown", "namespace": "shop", "severity": "critical"})
    assert found is not None
    assert found.name == "10-coordinator"
    found = pick(ruleset, {"alertname": "CoordinatorDown", "namespace": "billing", "severity": "critical"})
    assert found is not None
    assert found.name == "20-coordinator-any-ns"
    found = pick(ruleset, {"alertname": "DiskFull", "severity": "critical"})
    assert found is not None
    assert found.name == "30-generic"
    assert pick(ruleset, {"alertname": "DiskFull", "severity": "warning"}) is None


def test_rule_without_alertname_matcher_still_wins_by_order(tmp_path: Path) -> None:
    ruleset = load(
        tmp_path,
        {"10-by-severity": ['severity="critical"'], "20-by-name": ['alertname="CoordinatorDown"']},
    )
    found = select.select_rule(ruleset, {"alertname": "CoordinatorDown", "severity": "critical"})
    assert found is not None
    assert found.name == "10-by-severity"


def test_matching_rules_lists_every_match_in_order(tmp_path: Path) -> None:
    ruleset = load(
        tmp_path,
        {
            "a": ['alertname="CoordinatorDown"'],
            "b": ['alertname=~"Coord.*"'],
            "c": ['alertname="Other"'],
            "d": [{"any": ['team="infra"', ['alertname="CoordinatorDown"']]}],
        },
    )
    names = [r.name for r in select.matching_rules(ruleset, {"alertname": "CoordinatorDown"})]
    assert names == ["a", "b", "d"]


def test_alert_without_alertname_reaches_rules_for_an_empty_alertname(tmp_path: Path) -> None:
    ruleset = load(tmp_path, {"a": ['alertname="X"'], "b": ['alertname=""'], "c": ['job="node"']})
    assert [r.name for r in select.matching_rules(ruleset, {"job": "node"})] == ["b", "c"]


NAMES = ["A", "B", "C", ""]
MATCHER = st.one_of(
    st.builds(lambda v: f'alertname="{v}"', st.sampled_from(NAMES)),
    st.builds(lambda v: f'alertname!="{v}"', st.sampled_from(NAMES)),
    st.builds(lambda v: f'alertname=~"{v}"', st.sampled_from(["A|B", ".*", "C?", "B.*"])),
    st.builds(lambda v: f'team="{v}"', st.sampled_from(["x", "y", ""])),
    st.builds(lambda v: f'team!~"{v}"', st.sampled_from(["x", "y|x"])),
)
MATCH_ITEM = st.one_of(
    MATCHER,
    MATCHER,
    st.builds(
        lambda alts: {"any": alts},
        st.lists(st.one_of(MATCHER, st.lists(MATCHER, min_size=1, max_size=2)), min_size=1, max_size=3),
    ),
)
LABELS = st.fixed_dictionaries(
    {},
    optional={"alertname": st.sampled_from([*NAMES[:-1], "D"]), "team": st.sampled_from(["x", "y", "z"])},
)


@settings(max_examples=60, deadline=None)
@given(matches=st.lists(st.lists(MATCH_ITEM, min_size=1, max_size=3), max_size=8), labels=LABELS)
def test_index_agrees_with_a_linear_scan(matches: list[list[object]], labels: dict[str, str]) -> None:
    rules = tuple(loader.parse_rule(rule_text(f"r{i}", match)) for i, match in enumerate(matches))
    ruleset = loader.RuleSet(rules)
    linear = [rule for rule in rules if rule.matches(labels)]
    assert select.matching_rules(ruleset, labels) == linear
    assert select.select_rule(ruleset, labels) is (linear[0] if linear else None)
