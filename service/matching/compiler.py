"""Turn the data of one rule file into a ``CompiledRule``, or into every problem that prevents it.

Owns the checks of a single rule beyond its shape: pydantic validation errors (translated into
sentences), matchers and ``match`` syntax, CEL ``when``, Jinja templates (target fields, ``with:``
strings, ``suggest``), probe and action names and their ``with:`` params against the ``Catalogue`` the
caller hands in (built from the registries; templated values wait for rendering), ``safety: safe`` on an
approval-only action, duplicate probe ids, ``verify.probe`` or a ``verify.advances`` probe naming no probe,
``quorum`` on an action that does not restart or delete pods, and a rule naming itself in ``depends_on``
(whether its other entries name rules of the set is a check across files, in ``loader``). The checks run
on the raw data, so one file reports all its problems at once. Problems carry a location (``("remediate",
0, "when")``), not a line: ``loader`` maps locations to lines. Never does I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from service.matching import catalogue as known
from service.matching import compiled, conditions, matchers, names, templates
from service.model import rules

Loc = tuple[str | int, ...]

#: The model behind each mapping of a rule file, by the field names leading to it (list indexes dropped).
_MODELS: dict[tuple[str, ...], type[pydantic.BaseModel]] = {
    (): rules.Rule,
    ("target",): rules.Target,
    ("diagnose",): rules.ProbeSpec,
    ("remediate",): rules.ActionSpec,
    ("remediate", "max_attempts"): rules.Attempts,
    ("remediate", "verify"): rules.Verify,
    ("suggest",): rules.Suggestion,
}


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str


def compile_rule(
    data: Any, file: str, compiler: templates.TemplateCompiler, catalogue: known.Catalogue | None
) -> tuple[compiled.CompiledRule | None, list[Problem]]:
    """Validate and compile one rule; the rule is ``None`` exactly when there are problems.

    Probe and action names, their ``with:`` params and ``safety: safe`` are checked against ``catalogue``;
    without one (``loader.parse_rule`` in tests) only the rule's own shape is checked.
    """
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        return None, [Problem((), f"a rule file holds one mapping (name:, match:, target:, …), got {kind}")]
    problems: list[Problem] = []
    rule: rules.Rule | None = None
    try:
        rule = rules.Rule.model_validate(data)
    except pydantic.ValidationError as exc:
        problems.extend(_translate(exc))
    checker = _Checker(compiler, problems, catalogue)
    group = checker.match(data.get("match"))
    target = checker.target(data.get("target"))
    probe_ids, diagnose_params = checker.diagnose(data.get("diagnose"))
    conds, remediate_params = checker.remediate(data.get("remediate"), probe_ids)
    suggest = checker.suggest(data.get("suggest"))
    checker.depends_on(data.get("depends_on"), data.get("name"), probe_ids)
    if problems or rule is None or target is None:
        return None, problems
    return (
        compiled.CompiledRule(
            rule=rule,
            file=file,
            matchers=group,
            target=target,
            conditions=conds,
            suggest=suggest,
            diagnose_params=diagnose_params,
            remediate_params=remediate_params,
        ),
        [],
    )


def rule_dependencies(data: Any) -> list[tuple[int, str]]:
    """``(index, entry)`` of each ``depends_on`` entry that names another rule: every string entry that is
    neither one of the rule's own diagnose ids nor the rule's own name (reported by ``compile_rule``).

    Works on raw data, so ``loader`` can check the names against the whole set even when a rule has other
    problems."""
    if not isinstance(data, dict):
        return []
    ids = {item.get("id") for _, item in _enumerate(data.get("diagnose")) if isinstance(item, dict)}
    return [
        (k, entry)
        for k, entry in _enumerate(data.get("depends_on"))
        if isinstance(entry, str) and entry not in ids and entry != data.get("name")
    ]


class _Checker:
    """Compiles the parts of one rule from raw data, recording a Problem for each failure."""

    def __init__(
        self, compiler: templates.TemplateCompiler, problems: list[Problem], catalogue: known.Catalogue | None
    ) -> None:
        self._catalogue = catalogue
        self._compiler = compiler
        self._problems = problems

    def _add(self, loc: Loc, message: str) -> None:
        self._problems.append(Problem(loc, f"{_where(loc)}: {message}" if loc else message))

    def match(self, items: Any) -> tuple[matchers.MatchGroup, ...]:
        groups: list[matchers.MatchGroup] = []
        for i, item in _enumerate(items):
            loc: Loc = ("match", i)
            if isinstance(item, dict) and set(item) == {"any"}:
                alternatives = self._alternatives(item["any"], (*loc, "any"))
                if alternatives is not None:
                    groups.append(matchers.AnyOf(alternatives))
            elif isinstance(item, str):
                matcher = self._matcher(item, loc)
                if matcher is not None:
                    groups.append(matcher)
            elif isinstance(item, dict) and len(item) == 1:
                ((key, value),) = item.items()
                self._add(loc, f'expected a matcher string; for "{key}: {value}" write {key}="{value}"')
            else:
                self._add(loc, 'expected a matcher string such as alertname="X", or {any: [...]}')
        return tuple(groups)

    def _alternatives(self, alts: Any, loc: Loc) -> tuple[tuple[matchers.Matcher, ...], ...] | None:
        if not isinstance(alts, list) or not alts:
            self._add(loc, "any: needs a non-empty list of matchers or lists of matchers")
            return None
        result: list[tuple[matchers.Matcher, ...]] = []
        for j, alt in enumerate(alts):
            texts = [(alt, (*loc, j))] if isinstance(alt, str) else _enumerate_at(alt, (*loc, j))
            if not texts or not all(isinstance(text, str) for text, _ in texts):
                self._add((*loc, j), "an alternative is a matcher string or a non-empty list of them")
                continue
            parsed = [self._matcher(text, at) for text, at in texts]
            result.append(tuple(m for m in parsed if m is not None))
        return tuple(result)

    def _matcher(self, text: str, loc: Loc) -> matchers.Matcher | None:
        try:
            return matchers.parse_matcher(text)
        except matchers.MatcherError as exc:
            self._add(loc, str(exc))
            return None

    def target(self, raw: Any) -> templates.CompiledTarget | None:
        if not isinstance(raw, dict):
            return None
        defaults = {
            name: info.default for name, info in rules.Target.model_fields.items() if not info.is_required()
        }
        compiled_fields: dict[str, Any] = {}
        literals: dict[str, str] = {}
        for name in ("kind", "namespace", "name", "selector"):
            source = raw.get(name, defaults.get(name))
            compiled_fields[name] = None if source is None else self._text(source, ("target", name))
            if isinstance(source, str) and not templates.is_template(source):
                problem = names.check_target_field(name, source)  # a constant is checked now, not per alert
                if problem is not None:
                    self._add(("target", name), problem)
                else:
                    literals[name] = source
        if any(compiled_fields[name] is None for name in ("kind", "namespace", "name")):
            return None
        return templates.CompiledTarget(**compiled_fields, literals=literals)

    def _text(self, source: Any, loc: Loc) -> Any:
        if not isinstance(source, str):
            return None  # pydantic reports the type
        try:
            return self._compiler.text(source)
        except templates.TemplateError as exc:
            self._add(loc, str(exc))
            return None

    def diagnose(self, items: Any) -> tuple[dict[str, int], tuple[templates.CompiledParams, ...]]:
        ids: dict[str, int] = {}
        params: list[templates.CompiledParams] = []
        for j, item in _enumerate(items):
            if not isinstance(item, dict):
                continue
            probe_id, probe = item.get("id"), item.get("probe")
            if isinstance(probe_id, str):
                if probe_id in ids:
                    self._add(
                        ("diagnose", j, "id"),
                        f"duplicate probe id {probe_id!r} (first at diagnose[{ids[probe_id]}])",
                    )
                else:
                    ids[probe_id] = j
            model = self._probe(probe, j) if isinstance(probe, str) else None
            params.append(
                self._params(item.get("with"), ("diagnose", j, "with"), endpoints=_endpoints(probe))
            )
            if model is not None:
                self._check_params(str(probe), model, item.get("with"), ("diagnose", j, "with"))
        return ids, tuple(params)

    def remediate(
        self, items: Any, probe_ids: Mapping[str, int]
    ) -> tuple[dict[int, conditions.Condition], tuple[templates.CompiledParams, ...]]:
        conds: dict[int, conditions.Condition] = {}
        params: list[templates.CompiledParams] = []
        for i, item in _enumerate(items):
            if not isinstance(item, dict):
                continue
            action = item.get("action")
            known_action = self._action(action, item.get("safety"), i) if isinstance(action, str) else None
            when = item.get("when")
            if isinstance(when, str):
                try:
                    conds[i] = conditions.compile_condition(when)
                except conditions.ConditionError as exc:
                    self._add(("remediate", i, "when"), f"bad CEL: {exc}")
            verify = item.get("verify")
            if isinstance(verify, dict):
                self._verify(verify, i, probe_ids)
            if isinstance(action, str):
                self._quorum(action, item.get("quorum"), i)
            params.append(
                self._params(item.get("with"), ("remediate", i, "with"), endpoints=_endpoints(action))
            )
            if known_action is not None:
                self._check_params(
                    str(action), known_action.params, item.get("with"), ("remediate", i, "with")
                )
        return conds, tuple(params)

    def _verify(self, verify: dict[str, Any], i: int, probe_ids: Mapping[str, int]) -> None:
        """``verify.probe`` and the probe of each ``verify.advances`` entry must be diagnose ids."""
        known = ", ".join(probe_ids) or "none"
        probe = verify.get("probe")
        if isinstance(probe, str) and probe not in probe_ids:
            self._add(("remediate", i, "verify", "probe"), f"{probe!r} names no diagnose id (known: {known})")
        for k, entry in _enumerate(verify.get("advances")):
            probe_id, dot, _ = entry.partition(".") if isinstance(entry, str) else ("", "", "")
            if dot and probe_id not in probe_ids:  # the shape (probe_id.fact) is the model's check
                self._add(
                    ("remediate", i, "verify", "advances", k),
                    f"{entry!r}: {probe_id!r} names no diagnose id (known: {known})",
                )

    def _quorum(self, action: str, quorum: Any, i: int) -> None:
        """``quorum`` only on an action that restarts or deletes pods (unchecked without a catalogue)."""
        if quorum is None or self._catalogue is None or action not in self._catalogue.actions:
            return
        if action not in self._catalogue.quorum_actions:
            allowed = ", ".join(sorted(self._catalogue.quorum_actions))
            self._add(
                ("remediate", i, "quorum"),
                f"quorum applies only to actions that restart or delete a workload's pods ({allowed});"
                f" {action} does not",
            )

    def depends_on(self, entries: Any, name: Any, probe_ids: Mapping[str, int]) -> None:
        """A rule may not depend on itself; other rule names are checked against the set by ``loader``."""
        for k, entry in _enumerate(entries):
            if isinstance(entry, str) and entry == name and entry not in probe_ids:
                self._add(("depends_on", k), f"{entry!r} is this rule: a rule may not depend on itself")

    def _probe(self, probe: str, j: int) -> type[pydantic.BaseModel] | None:
        """The params model of a known probe; an unknown one is a problem (unchecked without a catalogue)."""
        if self._catalogue is None:
            return None
        model = self._catalogue.probes.get(probe)
        if model is None:
            hint = did_you_mean(probe, set(self._catalogue.probes))
            self._add(("diagnose", j, "probe"), f"unknown probe {probe!r}{hint}")
        return model

    def _action(self, action: str, safety: Any, i: int) -> known.KnownAction | None:
        """A known action; an unknown one, or ``safety: safe`` on an approval-only one, is a problem."""
        if self._catalogue is None:
            return None
        known_action = self._catalogue.actions.get(action)
        if known_action is None:
            hint = did_you_mean(action, set(self._catalogue.actions))
            self._add(("remediate", i, "action"), f"unknown action {action!r}{hint}")
        elif safety == "safe" and not known_action.safe_capable:
            self._add(
                ("remediate", i, "safety"),
                f"{action} is approval-only and cannot be safety: safe; use safety: unsafe to propose it"
                " to a human",
            )
        return known_action

    def _check_params(self, name: str, model: type[pydantic.BaseModel], raw: Any, loc: Loc) -> None:
        """Check ``with:`` against the params model of ``name``; templated values wait for rendering."""
        if not (raw is None or isinstance(raw, dict)):
            return
        raw = raw or {}
        templated = {key for key, value in raw.items() if _has_template(value)}
        concrete = {key: value for key, value in raw.items() if key not in templated}
        try:
            model.model_validate(concrete)
        except pydantic.ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                path = tuple(error["loc"])
                if error["type"] == "missing" and path[:1] and path[0] in templated:
                    continue
                inside = path[:1] and path[0] in raw
                where = "" if inside else f"{'.'.join(str(part) for part in path) or 'with'}: "
                self._add((*loc, *path) if inside else loc, f"bad params for {name}: {where}{error['msg']}")

    def _params(self, raw: Any, loc: Loc, *, endpoints: frozenset[str]) -> templates.CompiledParams:
        compiled_params, problems = self._compiler.params(
            raw if isinstance(raw, dict) else {}, _where(loc), endpoints=endpoints
        )
        for path, message in problems:
            self._add((*loc, *path), message)
        return compiled_params

    def suggest(self, items: Any) -> tuple[templates.CompiledSuggestion, ...]:
        result: list[templates.CompiledSuggestion] = []
        for k, item in _enumerate(items):
            source, loc = (
                (item, ("suggest", k)) if isinstance(item, str) else (None, ("suggest", k, "command"))
            )
            hazard = None
            if isinstance(item, dict):
                source, hazard = item.get("command"), item.get("hazard")
            if not isinstance(source, str):
                continue  # pydantic reports it
            try:
                template = self._compiler.command(source)
            except templates.TemplateError as exc:
                self._add(loc, str(exc))
                continue
            result.append(
                templates.CompiledSuggestion(source, template, hazard if isinstance(hazard, str) else None)
            )
        return tuple(result)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return templates.is_template(value)
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def _translate(exc: pydantic.ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
            parent, key = loc[:-1], loc[-1]
            shape = tuple(part for part in parent if isinstance(part, str))
            model = _MODELS.get(shape)
            hint = did_you_mean(key, _field_names(model)) if model is not None else ""
            message = f"unknown field {key!r}{hint}"
            problems.append(Problem(loc, f"{_where(parent)}: {message}" if parent else message))
        elif kind == "missing":
            problems.append(Problem(loc, f"{_where(loc)}: required field is missing"))
        else:
            message = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            if isinstance(value, str | int | float | bool) and kind != "value_error":
                message += f" (got {value!r})"
            problems.append(Problem(loc, f"{_where(loc)}: {message}"))
    return problems


def _field_names(model: type[pydantic.BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def did_you_mean(word: str, known: frozenset[str] | set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _where(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _enumerate(items: Any) -> list[tuple[int, Any]]:
    return list(enumerate(items)) if isinstance(items, list) else []


def _enumerate_at(items: Any, loc: Loc) -> list[tuple[Any, Loc]]:
    return [(item, (*loc, k)) for k, item in _enumerate(items)]


#: ``with:`` keys that say where a probe or action connects; their templates are endpoint templates.
_ENDPOINT_KEYS = frozenset({"url", "host"})


def _endpoints(name: object) -> frozenset[str]:
    """The endpoint keys of a probe or action's ``with:`` (``dns.resolve`` names its host ``name``)."""
    return _ENDPOINT_KEYS | {"name"} if name == "dns.resolve" else _ENDPOINT_KEYS
