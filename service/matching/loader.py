"""Loading and linting a directory of rule files (DESIGN §3.3): the only I/O of ``matching``.

Owns finding the rule files (``*.yaml`` and ``*.yml`` directly in the directory, sorted by file name;
hidden files such as editor backups or a ConfigMap's ``..data`` are skipped), parsing them, mapping each
problem to ``file:line``, checks across files (duplicate rule names; every ``depends_on`` entry that is not
one of the rule's own probe ids names a rule of the set, and rule dependencies make no cycle) and the
runbooks' maintenance clock: a warning when a rule was last ``reviewed`` more than 31 days ago (the monthly
review), an error in ``lint`` when more than 366 days ago (the yearly revision: loading only warns, a stale
date must not stop remediation), and — when the caller read the drills from a store — a warning when a rule
has not been drilled for 92 days (the quarterly test) or never was; plus a warning for no ``runbook_url``.
``load_rules`` raises ``RuleLoadError`` listing every error of every file; ``lint`` returns them. Both check
probe and action names and their ``with:`` params against the ``catalogue.Catalogue`` the caller passes in.
Reads files; never writes, never imports a network or database library.

``CompiledRule``, ``RuleSet``, ``LintError`` and ``RuleLoadError`` are defined in ``compiled`` and
``problems`` and re-exported here, the module callers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from service.matching import catalogue as known
from service.matching import compiled, compiler, positions, templates
from service.matching.compiled import CompiledRule, RuleSet
from service.matching.problems import LintError, RuleLoadError

__all__ = ["CompiledRule", "LintError", "RuleLoadError", "RuleSet", "lint", "load_rules", "parse_rule"]

_SUFFIXES = (".yaml", ".yml")
#: A rule whose ``reviewed:`` date is more than this many days old gets a warning.
REVIEW_MAX_AGE_DAYS = 31
#: … and ``lint`` reports an error when it is more than this many days old (the runbooks' yearly revision).
REVISION_MAX_AGE_DAYS = 366
#: A rule whose last drill is more than this many days old (or that was never drilled) gets a warning.
DRILL_MAX_AGE_DAYS = 92


def load_rules(directory: Path, *, catalogue: known.Catalogue, today: date | None = None) -> RuleSet:
    """Load and compile every rule file; raise ``RuleLoadError`` with all errors (warnings do not raise)."""
    rules, problems = _load(directory, date.today() if today is None else today, catalogue)
    errors = [problem for problem in problems if problem.severity == "error"]
    if errors:
        raise RuleLoadError(errors)
    return RuleSet(tuple(rules), warnings=tuple(problems))


def lint(
    directory: Path,
    *,
    catalogue: known.Catalogue,
    today: date | None = None,
    drills: Mapping[str, date] | None = None,
) -> list[LintError]:
    """Every error and warning of every rule file, in file order, then line order.

    ``drills`` maps a rule name to the day of its last drill (the caller reads them from a store; a rule
    missing from it was never drilled); None skips the drill check."""
    day = date.today() if today is None else today
    return _load(directory, day, catalogue, revision_error=True, drills=drills)[1]


def parse_rule(
    text: str, *, file: str = "<string>", catalogue: known.Catalogue | None = None
) -> CompiledRule:
    """Compile one rule from YAML text (for tests); raise ``RuleLoadError``.

    Without ``catalogue`` probe and action names, their params and ``quorum`` are not checked; the rule
    names of ``depends_on`` never are (there is no set to look in).
    """
    result = _lint_text(text, file, templates.TemplateCompiler(), today=None, catalogue=catalogue)
    errors = [problem for problem in result.problems if problem.severity == "error"]
    if errors or result.rule is None:
        raise RuleLoadError(errors)
    return result.rule


@dataclass
class _FileResult:
    file: str
    rule: compiled.CompiledRule | None = None
    name: str | None = None
    name_line: int = 0
    #: ``(index, entry, line)`` of each ``depends_on`` entry naming another rule (not an own probe id)
    depends_on: list[tuple[int, str, int]] = field(default_factory=list)
    problems: list[LintError] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        """An error found by a check across files: the rule no longer loads."""
        self.problems.append(LintError(self.file, line, message))
        self.rule = None


def _load(
    directory: Path,
    today: date,
    catalogue: known.Catalogue,
    *,
    revision_error: bool = False,
    drills: Mapping[str, date] | None = None,
) -> tuple[list[compiled.CompiledRule], list[LintError]]:
    paths, problem = _rule_paths(directory)
    if problem is not None:
        return [], [problem]
    compiler_ = templates.TemplateCompiler()
    results = [_lint_file(path, compiler_, today, catalogue) for path in paths]
    _check_names(results)
    _check_dependencies(results)
    for result in results:
        result.problems = [_revision(p, revision_error) for p in result.problems]
        if drills is not None and result.name is not None:
            result.problems.extend(_drill_warning(result, drills.get(result.name), today))
    rules: list[compiled.CompiledRule] = []
    problems: list[LintError] = []
    for result in results:
        problems.extend(sorted(result.problems, key=lambda problem: problem.line))
        if result.rule is not None:
            rules.append(result.rule)
    return rules, problems


def _rule_paths(directory: Path) -> tuple[list[Path], LintError | None]:
    if not directory.is_dir():
        reason = "does not exist" if not directory.exists() else "is not a directory"
        return [], LintError(str(directory), 0, f"rules directory {str(directory)!r} {reason}")
    try:
        paths = sorted(
            (
                p
                for p in directory.iterdir()
                if p.suffix in _SUFFIXES and not p.name.startswith(".") and p.is_file()
            ),
            key=lambda p: p.name,
        )
    except OSError as exc:
        return [], LintError(str(directory), 0, f"cannot list rules directory: {exc}")
    return paths, None


def _lint_file(
    path: Path, compiler_: templates.TemplateCompiler, today: date, catalogue: known.Catalogue
) -> _FileResult:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _FileResult(str(path), problems=[LintError(str(path), 0, f"cannot read rule file: {exc}")])
    return _lint_text(text, str(path), compiler_, today=today, catalogue=catalogue)


def _check_names(results: list[_FileResult]) -> None:
    """A rule name may appear in one file only; the later files are errors."""
    first_seen: dict[str, _FileResult] = {}
    for result in results:
        if result.name is None:
            continue
        first = first_seen.setdefault(result.name, result)
        if first is not result:
            where = f"{first.file}:{first.name_line}"
            result.add(result.name_line, f"duplicate rule name {result.name!r} (also in {where})")


def _check_dependencies(results: list[_FileResult]) -> None:
    """Every ``depends_on`` rule name is a rule of the set, and rule dependencies make no cycle."""
    names: dict[str, _FileResult] = {}
    for result in results:
        if result.name is not None:
            names.setdefault(result.name, result)  # a duplicate name is reported by _check_names
    for result in results:
        for index, entry, line in result.depends_on:
            if entry not in names:
                hint = compiler.did_you_mean(entry, set(names))
                result.add(
                    line,
                    f"depends_on[{index}]: {entry!r} is neither a probe id of this rule nor a rule in the"
                    f" set{hint}",
                )
    graph = {
        name: [entry for _, entry, _ in result.depends_on if entry in names] for name, result in names.items()
    }
    for cycle in _cycles(graph):
        first = names[cycle[0]]
        line = next(line for _, entry, line in first.depends_on if entry == cycle[1])
        path = " -> ".join(cycle)
        first.add(line, f"depends_on: dependency cycle {path}; each would wait for the other to recover")


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """A cycle, as ``[a, b, …, a]``, for each edge that closes one in a depth-first walk in ``graph`` order.

    Each group of rules that depend on each other is reported at least once, starting at its first rule in
    ``graph`` order; no walk is repeated, so it stays linear however many paths the rules make."""
    on_path: list[str] = []
    done: set[str] = set()
    found: list[list[str]] = []

    def walk(name: str) -> None:
        on_path.append(name)
        for nxt in graph[name]:
            if nxt in on_path:
                found.append([*on_path[on_path.index(nxt) :], nxt])
            elif nxt not in done:
                walk(nxt)
        on_path.pop()
        done.add(name)

    for start in graph:
        if start not in done:
            walk(start)
    return found


def _lint_text(
    text: str,
    file: str,
    compiler_: templates.TemplateCompiler,
    *,
    today: date | None,
    catalogue: known.Catalogue | None,
) -> _FileResult:
    result = _FileResult(file)
    try:
        root, data = positions.parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        detail = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            where = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
            detail += f" ({exc.context}{where})"
        result.problems.append(LintError(file, line, f"YAML syntax error: {detail}"))
        return result
    except yaml.YAMLError as exc:
        result.problems.append(LintError(file, 0, f"YAML syntax error: {exc}"))
        return result
    if root is None:
        result.problems.append(
            LintError(file, 1, "empty rule file: expected one rule (name:, match:, target:, …)")
        )
        return result
    for line, message in positions.duplicate_keys(root):
        result.problems.append(LintError(file, line, message))
    rule, problems = compiler.compile_rule(data, file, compiler_, catalogue)
    for problem in problems:
        result.problems.append(LintError(file, positions.line_of(root, problem.loc), problem.message))
    if isinstance(data, dict):
        if isinstance(data.get("name"), str):
            result.name, result.name_line = data["name"], positions.line_of(root, ("name",))
        if today is not None:
            result.problems.extend(_review_warning(data, root, file, today))
            result.problems.extend(_runbook_warning(data, root, file))
    result.depends_on = [
        (k, entry, positions.line_of(root, ("depends_on", k)))
        for k, entry in compiler.rule_dependencies(data)
    ]
    result.rule = rule if not any(p.severity == "error" for p in result.problems) else None
    return result


def _review_warning(data: dict[str, Any], root: yaml.Node, file: str, today: date) -> list[LintError]:
    """The monthly review is due (a warning); the yearly revision is overdue (an ``_Overdue`` warning that
    ``lint`` reports as an error)."""
    reviewed = data.get("reviewed")
    if not isinstance(reviewed, date) or isinstance(reviewed, datetime):
        return []
    age = (today - reviewed).days
    line = positions.line_of(root, ("reviewed",))
    if age > REVISION_MAX_AGE_DAYS:
        message = (
            f"rule last reviewed on {reviewed.isoformat()}, {age} days ago (more than"
            f" {REVISION_MAX_AGE_DAYS}): the runbooks ask for a yearly revision; revise the runbook and the"
            " rule, then update reviewed:"
        )
        return [_Overdue(file, line, message, severity="warning")]
    if age <= REVIEW_MAX_AGE_DAYS:
        return []
    message = (
        f"rule last reviewed on {reviewed.isoformat()}, {age} days ago (more than {REVIEW_MAX_AGE_DAYS});"
        " review it and update reviewed:"
    )
    return [LintError(file, line, message, severity="warning")]


@dataclass(frozen=True)
class _Overdue(LintError):
    """The yearly revision is overdue: an error for ``lint``, a warning when the rules load (a stale date
    must not stop the service from remediating)."""


def _revision(problem: LintError, as_error: bool) -> LintError:
    if not isinstance(problem, _Overdue):
        return problem
    return LintError(problem.file, problem.line, problem.message, "error" if as_error else "warning")


def _drill_warning(result: _FileResult, drilled: date | None, today: date) -> list[LintError]:
    if drilled is None:
        message = (
            f"rule {result.name!r} was never drilled: the runbooks ask for a test every quarter;"
            f" run remediator drill {result.name}"
        )
    elif (age := (today - drilled).days) > DRILL_MAX_AGE_DAYS:
        message = (
            f"rule {result.name!r} last drilled on {drilled.isoformat()}, {age} days ago (more than"
            f" {DRILL_MAX_AGE_DAYS}: the runbooks ask for a test every quarter); run remediator drill"
            f" {result.name}"
        )
    else:
        return []
    return [LintError(result.file, result.name_line, message, severity="warning")]


def _runbook_warning(data: dict[str, Any], root: yaml.Node, file: str) -> list[LintError]:
    if data.get("runbook_url"):
        return []
    message = "no runbook_url: add the link to the runbook's page; bundles, pages and reports link it"
    return [LintError(file, positions.line_of(root, ("runbook",)), message, severity="warning")]
