"""Rule unit tests (``remediator rules test``, DESIGN §3.3): given an alert and findings, the expected plan.

Owns the test file format (``rules/tests/*.test.yaml``, validated with pydantic: unknown keys are errors),
building each case's alert, findings and ``GuardState`` at a fixed ``NOW``, running ``decide`` and comparing
the plan with ``expect``. Like ``promtool test rules``: one line per test, then a summary.

Exit codes of ``run``: 0 every test passed, 1 some failed, 2 a file could not be read, parsed or validated
(reported as ``file:line: error: …``). Reads test files; never writes, never touches the network, a store or
a cluster (no aiohttp, sqlalchemy, redis or kubernetes here).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.decision import dependencies
from service.decision import plan as planning
from service.matching import loader, positions, templates
from service.model import alerts, incidents

#: The time every test runs at; ``*_ago`` guards are subtracted from it.
NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: When the test alert started firing (5 minutes before ``NOW``).
STARTS_AT = NOW - timedelta(minutes=5)
FINGERPRINT = "test"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertSpec(_Strict):
    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)


class FindingSpec(_Strict):
    status: incidents.FindingStatus
    summary: str = ""
    facts: dict[str, Any] = Field(default_factory=dict)


class Guards(_Strict):
    """The guard state of a case; every key optional, defaults as in ``GuardState``."""

    last_action_ago: dict[str, float] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict)
    budget_left: int = 10
    acting: int = 0
    storm_brake: int = 5
    paused: bool = False
    dry_run: bool = False
    coordination_ok: bool = True
    last_mitigated_ago: float | None = None
    flap_window_s: float = 1800.0
    namespaces: list[str] | None = None
    blast_radius: dict[str, str] = Field(default_factory=dict)
    truncated: int = Field(default=0, ge=0)
    #: depended-on rules (``depends_on``) with an open incident in the target's namespace; the dependency
    #: probes' findings come from the case's ``findings``
    open_incidents: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class OpenIncident:
    """An open incident a test case names (``guards.open_incidents``): the rule, and nothing else known."""

    id: str
    rule: str
    target_namespace: str
    target_kind: str = ""
    target_name: str = ""


class BlockedSpec(_Strict):
    action: str
    guard: str


class Expect(_Strict):
    apply: str | None  # required: null says "nothing automatic"
    blocked: list[BlockedSpec] | None = None
    proposals: list[str] | None = None
    escalate: bool | None = None
    reason_contains: str | None = None


class Case(_Strict):
    name: str = Field(min_length=1)
    alert: AlertSpec
    findings: dict[str, FindingSpec] = Field(default_factory=dict)
    guards: Guards = Guards()
    expect: Expect


class TestFile(_Strict):
    __test__ = False  # not a pytest test class

    rule: str
    tests: list[Case] = Field(min_length=1)


class FileError(Exception):
    """A test file that cannot be read, parsed or validated; ``str()`` is ``file:line: error: …`` lines."""

    def __init__(self, file: str, problems: Sequence[tuple[int, str]]) -> None:
        self.file = file
        self.problems = list(problems)
        super().__init__(
            "\n".join(
                f"{file}{f':{line}' if line else ''}: error: {message}" for line, message in self.problems
            )
        )


@dataclass(frozen=True)
class Result:
    file: str
    rule: str
    name: str
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def line(self) -> str:
        where = f"{self.file}: {self.rule}: {self.name}"
        return f"ok  {where}" if self.ok else f"FAIL {where} — {'; '.join(self.mismatches)}"


def load_file(path: Path, rules: loader.RuleSet) -> tuple[loader.CompiledRule, TestFile]:
    """Read and validate one test file against the loaded rules; raise ``FileError``."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FileError(file, [(0, f"cannot read test file: {exc}")]) from exc
    try:
        root, data = positions.parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise FileError(
            file, [(mark.line + 1 if mark else 0, f"YAML syntax error: {exc.problem or exc}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise FileError(file, [(0, f"YAML syntax error: {exc}")]) from exc
    if root is None:
        raise FileError(file, [(1, "empty test file: expected rule: and tests:")])
    problems = [(line, message) for line, message in positions.duplicate_keys(root)]
    try:
        spec = TestFile.model_validate(data)
    except ValidationError as exc:
        problems.extend(_invalid(root, exc))
        raise FileError(file, sorted(problems)) from exc
    rule = rules.by_name(spec.rule)
    if rule is None:
        known = ", ".join(sorted(r.name for r in rules.rules)) or "none"
        problems.append((positions.line_of(root, ("rule",)), f"unknown rule {spec.rule!r} (rules: {known})"))
    else:
        problems.extend(_unknown_findings(root, spec, rule))
        problems.extend(_unknown_dependencies(root, spec, rule))
    if problems or rule is None:
        raise FileError(file, sorted(problems))
    return rule, spec


def _invalid(root: yaml.Node, exc: ValidationError) -> list[tuple[int, str]]:
    """The validation errors of a test file, each at its line."""
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path_text = ".".join(map(str, loc)) or "file"
        message = (
            f"{path_text}: unknown key {loc[-1]!r}"
            if error["type"] == "extra_forbidden" and loc
            else f"{path_text}: {error['msg']}"
        )
        problems.append((positions.line_of(root, loc), message))
    return problems


def _unknown_findings(root: yaml.Node, spec: TestFile, rule: loader.CompiledRule) -> list[tuple[int, str]]:
    """The findings a case gives for an id that is not a probe of its rule, each at its line."""
    probe_ids = {p.id for p in rule.rule.diagnose}
    return [
        (
            positions.line_of(root, ("tests", index, "findings", finding_id)),
            f"tests.{index}.findings: {finding_id!r} is not a probe id of rule {rule.name}"
            f" (ids: {', '.join(sorted(probe_ids)) or 'none'})",
        )
        for index, case in enumerate(spec.tests)
        for finding_id in case.findings
        if finding_id not in probe_ids
    ]


def _unknown_dependencies(
    root: yaml.Node, spec: TestFile, rule: loader.CompiledRule
) -> list[tuple[int, str]]:
    """The ``open_incidents`` a case names that are not rules this rule depends on, each at its line."""
    known = rule.rule.dependency_rules()
    return [
        (
            positions.line_of(root, ("tests", index, "guards", "open_incidents", at)),
            f"tests.{index}.guards.open_incidents: {name!r} is not a rule {rule.name} depends on"
            f" (depends_on rules: {', '.join(known) or 'none'})",
        )
        for index, case in enumerate(spec.tests)
        for at, name in enumerate(case.guards.open_incidents)
        if name not in known
    ]


def build(
    rule: loader.CompiledRule, case: Case, *, now: float
) -> tuple[alerts.Alert, list[incidents.Finding], planning.GuardState]:
    """The alert, findings and guard state a case describes, at ``now``."""
    alert = alerts.Alert(
        status="firing",
        labels=case.alert.labels,
        annotations=case.alert.annotations,
        starts_at=STARTS_AT,
        fingerprint=FINGERPRINT,
    )
    probes = {p.id: p.probe for p in rule.rule.diagnose}
    found = [
        incidents.Finding(
            id=fid, probe=probes.get(fid, "test"), status=f.status, summary=f.summary, facts=f.facts
        )
        for fid, f in case.findings.items()
    ]
    target = templates.render_target(rule.target, templates.alert_context(alert, rule))
    g = case.guards
    guards = planning.GuardState(
        target=target,
        dry_run=g.dry_run,
        paused=g.paused,
        coordination_ok=g.coordination_ok,
        allowed_namespaces=frozenset(g.namespaces) if g.namespaces is not None else None,
        truncated=g.truncated,
        last_action={name: now - ago for name, ago in g.last_action_ago.items()},
        attempts=dict(g.attempts),
        budget_left=g.budget_left,
        acting=g.acting,
        storm_brake=g.storm_brake,
        last_mitigated=None if g.last_mitigated_ago is None else now - g.last_mitigated_ago,
        flap_window_s=g.flap_window_s,
        blast_radius=dict(g.blast_radius),
        dependencies=dependencies.failing(
            rule.rule,
            found,
            [OpenIncident(f"open-{n}", n, target.namespace) for n in g.open_incidents],
        ),
    )
    return alert, found, guards


def check(rule: loader.CompiledRule, case: Case, *, now: float) -> tuple[str, ...]:
    """Run one case; the mismatches between ``expect`` and the plan (empty: the test passes)."""
    alert, found, guards = build(rule, case, now=now)
    if not rule.matches(alert.labels):
        return (f"expected the alert to match rule {rule.name}, got no match (check the labels)",)
    result = planning.decide(rule, alert, found, guards, now=now)
    expect = case.expect
    mismatches: list[str] = []
    got_apply = result.apply.action if result.apply else None
    if got_apply != expect.apply:
        mismatches.append(f"expected apply {_show(expect.apply)}, got {_show(got_apply)} ({result.reason})")
    if expect.blocked is not None:
        want = [f"{b.action}:{b.guard}" for b in expect.blocked]
        got = [f"{s.action}:{s.guard}" for s in result.blocked]
        if want != got:
            mismatches.append(f"expected blocked {_list(want)}, got {_list(got)}")
    if expect.proposals is not None:
        got = [s.action for s in result.proposals]
        if list(expect.proposals) != got:
            mismatches.append(f"expected proposals {_list(expect.proposals)}, got {_list(got)}")
    if expect.escalate is not None and expect.escalate != result.escalate:
        mismatches.append(f"expected escalate {_show(expect.escalate)}, got {_show(result.escalate)}")
    if expect.reason_contains is not None and expect.reason_contains not in result.reason:
        mismatches.append(f"expected reason containing {expect.reason_contains!r}, got {result.reason!r}")
    return tuple(mismatches)


def run(paths: Iterable[Path], rules: loader.RuleSet, *, out: TextIO, err: TextIO) -> int:
    """Run every test of every file; print one line per test and a summary; return the exit code."""
    now = NOW.timestamp()
    results: list[Result] = []
    broken = 0
    for path in paths:
        try:
            rule, spec = load_file(path, rules)
        except FileError as exc:
            print(exc, file=err)
            broken += 1
            continue
        for case in spec.tests:
            result = Result(str(path), rule.name, case.name, check(rule, case, now=now))
            results.append(result)
            print(result.line(), file=out)
    failed = sum(1 for r in results if not r.ok)
    summary = f"{len(results) - failed} passed, {failed} failed"
    if broken:
        summary += f", {broken} file(s) with errors"
    print(summary, file=out)
    if broken:
        return 2
    return 1 if failed else 0


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]"
