"""Compiled rules: ``CompiledRule`` (a rule with its matchers, CEL and templates built) and ``RuleSet``.

Owns the frozen, ready-to-call form of the rules and the index that makes selection a dict lookup:
rules with a top-level ``alertname="X"`` matcher are filed under ``X``; the others are candidates for
every alert. Both names are re-exported by ``loader``, which builds them. Never does I/O.
(``CompiledRule`` has fields named ``matchers`` and ``conditions``, so those modules are imported under
private aliases.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from service.matching import conditions as _conditions
from service.matching import matchers as _matchers
from service.matching import problems, templates
from service.model import rules


@dataclass(frozen=True, eq=False, repr=False)
class CompiledRule:
    """A rule as loaded from ``file``, compiled; compared by identity.

    ``conditions`` maps an index of ``rule.remediate`` to its compiled ``when``; ``diagnose_params`` and
    ``remediate_params`` are aligned with ``rule.diagnose`` and ``rule.remediate``.
    """

    rule: rules.Rule
    file: str
    matchers: tuple[_matchers.MatchGroup, ...]
    target: templates.CompiledTarget
    conditions: dict[int, _conditions.Condition] = field(default_factory=dict)
    suggest: tuple[templates.CompiledSuggestion, ...] = ()
    diagnose_params: tuple[templates.CompiledParams, ...] = ()
    remediate_params: tuple[templates.CompiledParams, ...] = ()
    _checks: tuple[Callable[[Mapping[str, str]], bool], ...] = field(init=False, repr=False)

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def index_key(self) -> str | None:
        """The value of the first top-level ``alertname="X"`` matcher, if any: the rule only takes ``X``."""
        for group in self.matchers:
            if isinstance(group, _matchers.Matcher) and group.name == "alertname" and group.op == "=":
                return group.value
        return None

    def __repr__(self) -> str:
        return f"CompiledRule(name={self.rule.name!r}, file={self.file!r})"

    def __post_init__(self) -> None:
        # Evaluation order for speed (an AND of pure predicates, so order never changes the result): the
        # matchers that usually decide (=, =~ on other labels) first, negative ones and ``any:`` after, the
        # index's own ``alertname="X"`` — already true for every candidate of that alertname — last.
        index_key = self.index_key

        def rank(group: _matchers.MatchGroup) -> int:
            if isinstance(group, _matchers.AnyOf):
                return 2
            if group.name == "alertname" and group.op == "=" and group.value == index_key:
                return 3
            return 0 if group.op in ("=", "=~") else 1

        ordered = sorted(self.matchers, key=rank)
        object.__setattr__(self, "_checks", tuple(group.matches for group in ordered))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for check in self._checks:  # noqa: SIM110 - a plain loop: all(<genexpr>) costs ~0.2 µs per rule
            if not check(labels):
                return False
        return True


@dataclass(frozen=True)
class RuleSet:
    """Rules in load order (file-name order), indexed by name and by ``alertname`` equality."""

    rules: tuple[CompiledRule, ...] = ()
    #: Lint warnings of the load (e.g. rules not reviewed for a while), for the caller to log.
    warnings: tuple[problems.LintError, ...] = ()
    _by_name: dict[str, CompiledRule] = field(init=False, repr=False, compare=False)
    _by_alertname: dict[str, tuple[CompiledRule, ...]] = field(init=False, repr=False, compare=False)
    _unindexed: tuple[CompiledRule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, CompiledRule] = {}
        positions: dict[str, list[int]] = {}
        unindexed: list[int] = []
        for position, rule in enumerate(self.rules):
            by_name.setdefault(rule.name, rule)
            key = rule.index_key
            if key is None:
                unindexed.append(position)
            else:
                positions.setdefault(key, []).append(position)
        by_alertname = {
            key: tuple(self.rules[p] for p in sorted([*indexed, *unindexed]))
            for key, indexed in positions.items()
        }
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_alertname", by_alertname)
        object.__setattr__(self, "_unindexed", tuple(self.rules[p] for p in unindexed))

    def by_name(self, name: str) -> CompiledRule | None:
        return self._by_name.get(name)

    def candidates(self, alertname: str) -> tuple[CompiledRule, ...]:
        """The rules that may match an alert named ``alertname``, in load order."""
        return self._by_alertname.get(alertname, self._unindexed)

    def __len__(self) -> int:
        return len(self.rules)
