"""docs/runbooks.md says what the rules do: every probe and action it names is in the rule of its section.

The page's markup (written at its top): a runbook section's heading ends with the rule's name in backticks
(``## Database Failure (MTTR 3 min) — `database-failure` ``); a probe is `` `id`: `probe.type` ``; an action is
`` `kube.rollout_restart` ``. Each section is checked against ``rules/<name>.yaml``: every probe (id and type)
and action it names exists in the rule, and every probe id and action of the rule is named. A doctored copy of
the page shows that a probe the rule lacks — the ``postgres.ping`` the coordinator section once claimed — fails.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from service import registries
from service.model import rules

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "runbooks.md"
RULES = ROOT / "rules"

#: The six AITBC runbooks; each must have its section.
AITBC = {
    "coordinator-api-outage",
    "network-partition",
    "database-failure",
    "redis-failure",
    "high-cpu-memory",
    "storage-issues",
}

_HEADING = re.compile(r"^## (?P<title>.+?) — `(?P<rule>[a-z0-9-]+)`\s*$")
#: a code span: a run of backticks, the text, the same run (CommonMark)
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_ID = re.compile(r"[a-z_][a-z0-9_]*")
#: a probe or action name: one of the families probes and actions are named in, a dot, a name
_NAME = re.compile(r"(?:kube|postgres|redis|http|tcp|dns|prometheus)\.[a-z_]+")


@dataclass
class Section:
    """One runbook section of the page: its heading's title and rule, and what it names."""

    title: str
    rule: str
    probes: set[tuple[str, str]] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)
    body: str = ""


def names_in(text: str) -> tuple[set[tuple[str, str]], set[str]]:
    """The probes (``(id, type)`` from `` `id`: `type` ``) and the actions (every other `` `family.name` ``)."""
    spans = [(m.start(), m.end(), m[2]) for m in _SPAN.finditer(text) if len(m[1]) == 1]
    probes: set[tuple[str, str]] = set()
    actions: set[str] = set()
    paired: set[int] = set()
    for i, ((_, end, content), (start, _, following)) in enumerate(itertools.pairwise(spans)):
        if _ID.fullmatch(content) and text[end:start] == ": " and _NAME.fullmatch(following):
            probes.add((content, following))
            paired.add(i + 1)
    for i, (_, _, content) in enumerate(spans):
        if i not in paired and _NAME.fullmatch(content):
            actions.add(content)
    return probes, actions


def parse(text: str) -> list[Section]:
    """The page's runbook sections, each running to the next ``##`` heading."""
    sections: list[Section] = []
    current: Section | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            current.body = "\n".join(body)
            current.probes, current.actions = names_in(current.body)

    for line in text.splitlines():
        if line.startswith("## "):
            close()
            match = _HEADING.match(line)
            current = Section(match["title"], match["rule"]) if match else None
            body = []
            if current is not None:
                sections.append(current)
        elif current is not None:
            body.append(line)
    close()
    return sections


def load_rule(name: str) -> rules.Rule:
    path = RULES / f"{name}.yaml"
    assert path.is_file(), f"a section names rule {name!r}, which has no file {path}"
    return rules.Rule.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def mismatches(section: Section, rule: rules.Rule) -> list[str]:
    """Every way the section and the rule disagree, as sentences; empty when the section is true."""
    probes = {probe.id: probe.probe for probe in rule.diagnose}
    actions = {step.action for step in rule.remediate}
    found: list[str] = []
    for probe_id, probe_type in sorted(section.probes):
        if probe_id not in probes:
            found.append(f"{section.rule}: `{probe_id}`: `{probe_type}` — the rule has no probe {probe_id!r}")
        elif probes[probe_id] != probe_type:
            found.append(
                f"{section.rule}: `{probe_id}`: `{probe_type}` — the rule's {probe_id} is {probes[probe_id]}"
            )
    for action in sorted(section.actions - actions):
        found.append(
            f"{section.rule}: `{action}` — not an action of the rule (a probe is written `id`: `type`)"
        )
    named = {probe_id for probe_id, _ in section.probes}
    for probe_id in sorted(set(probes) - named):
        found.append(f"{section.rule}: probe `{probe_id}`: `{probes[probe_id]}` of the rule is not named")
    for action in sorted(actions - section.actions):
        found.append(f"{section.rule}: action `{action}` of the rule is not named")
    return found


def page() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_page_states_its_markup_at_the_top() -> None:
    head = page().split("\n## ", 2)[:2]
    assert "`` `db`: `tcp.connect` ``" in "\n".join(head)
    assert "`` `kube.rollout_restart` ``" in "\n".join(head)


def test_every_runbook_has_a_section_titled_as_its_rule_with_its_mttr() -> None:
    sections = parse(page())
    assert {s.rule for s in sections} == AITBC
    assert len(sections) == len(AITBC), "one section per rule"
    for section in sections:
        rule = load_rule(section.rule)
        minutes = rule.mttr_target.total_seconds() / 60
        assert section.title == f"{rule.runbook} (MTTR {minutes:g} min)", section.title


@pytest.mark.parametrize("name", sorted(AITBC))
def test_each_section_names_exactly_the_probes_and_actions_of_its_rule(name: str) -> None:
    [section] = [s for s in parse(page()) if s.rule == name]
    assert mismatches(section, load_rule(name)) == []


def test_every_probe_and_action_the_page_names_is_one_the_service_has() -> None:
    catalogue = registries.catalogue()
    probes, actions = names_in(page())
    assert probes and actions
    assert {t for _, t in probes} - set(catalogue.probes) == set()
    assert actions - set(catalogue.actions) == set(), "a probe type alone is read as an action"


def test_each_section_links_its_rules_runbook_url() -> None:
    for section in parse(page()):
        url = load_rule(section.rule).runbook_url
        assert url, f"{section.rule} has no runbook_url"
        assert f"({url})" in section.body, f"the {section.title} section does not link {url}"


# ---- the check fails on an untrue page ----------------------------------------------------------------------


def coordinator(text: str) -> list[str]:
    [section] = [s for s in parse(text) if s.rule == "coordinator-api-outage"]
    return mismatches(section, load_rule("coordinator-api-outage"))


def test_a_probe_the_rule_lacks_fails() -> None:
    # what the page claimed before: the coordinator rule checks the database with postgres.ping
    true = "**partial** `db`: `tcp.connect`"
    assert true in page()
    doctored = page().replace(true, true + " and `pg`: `postgres.ping`", 1)
    assert coordinator(doctored) == [
        "coordinator-api-outage: `pg`: `postgres.ping` — the rule has no probe 'pg'"
    ]


def test_a_probe_of_the_wrong_type_fails() -> None:
    doctored = page().replace("`db`: `tcp.connect`", "`db`: `postgres.ping`")
    assert coordinator(doctored) == [
        "coordinator-api-outage: `db`: `postgres.ping` — the rule's db is tcp.connect"
    ]


def test_an_action_the_rule_lacks_or_a_probe_type_written_alone_fails() -> None:
    doctored = page().replace(
        "**partial** `db`: `tcp.connect`", "**partial** `tcp.connect`, then `postgres.terminate_idle`", 1
    )
    assert coordinator(doctored) == [
        "coordinator-api-outage: `postgres.terminate_idle` — not an action of the rule (a probe is written `id`: `type`)",
        "coordinator-api-outage: `tcp.connect` — not an action of the rule (a probe is written `id`: `type`)",
        "coordinator-api-outage: probe `db`: `tcp.connect` of the rule is not named",
    ]


def test_a_probe_or_action_of_the_rule_left_out_fails() -> None:
    start = page().index("## Coordinator API Outage")
    end = page().index("\n## ", start + 1)
    section = page()[start:end]
    doctored_section = section.replace("`redis`: `redis.ping`", "Redis").replace(
        "`kube.rollout_undo`", "a rollback"
    )
    assert coordinator(page()[:start] + doctored_section + page()[end:]) == [
        "coordinator-api-outage: probe `redis`: `redis.ping` of the rule is not named",
        "coordinator-api-outage: action `kube.rollout_undo` of the rule is not named",
    ]
