"""Sandboxed Jinja2 templates of a rule: the target, the ``with:`` params, the ``suggest`` commands.

Owns compiling templates (once, when rules load, through a ``TemplateCompiler``) and rendering them per
alert. Two sandboxed environments (``ImmutableSandboxedEnvironment``, ``StrictUndefined``, no
autoescape): one for targets and params, one for ``suggest`` whose ``finalize`` shell-quotes every
interpolated value with ``shlex.quote``, so ``{{ labels.x }}`` with the value ``a; rm -rf /`` renders as
``'a; rm -rf /'``. Because of that, ``{{ }}`` inside quotes or backticks in a ``suggest`` command is
refused at load: it would undo the quoting.

Template context (built by ``alert_context``, extended by ``with_target``):

- ``labels``: the alert's labels (dict of str); ``annotations``: its annotations (dict of str);
- ``alert``: ``{"status", "fingerprint", "startsAt" (RFC 3339), "generatorURL"}``;
- ``rule``: ``{"name", "runbook", "severity"}``;
- ``target`` (params and ``suggest`` only): the rendered target,
  ``{"kind", "namespace", "name", "selector"}``.

``render_target`` and ``render_suggestions`` never raise: a failure becomes ``valid=False`` with the
reason, or a ``# could not render: …`` comment. ``render_params`` raises ``TemplateError``.
Never does I/O; never renders data (label values) as a template.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from service.matching import names
from service.model import alerts, incidents

if TYPE_CHECKING:
    from service.matching.compiled import CompiledRule

_DELIMITERS = ("{{", "{%", "{#")
_QUOTES = {"'": "single quotes", '"': "double quotes", "`": "backticks"}
ParamPath = tuple[str | int, ...]


class TemplateError(ValueError):
    """A template that does not compile, or (for params) fails to render."""


@dataclass(frozen=True)
class CompiledTarget:
    kind: jinja2.Template
    namespace: jinja2.Template
    name: jinja2.Template
    selector: jinja2.Template | None = None


@dataclass(frozen=True)
class CompiledSuggestion:
    source: str
    template: jinja2.Template
    hazard: str | None = None


@dataclass(frozen=True)
class CompiledParams:
    """A ``with:`` mapping whose strings with Jinja delimiters are compiled templates; ``where`` names it."""

    where: str
    tree: Mapping[str, Any]


class TemplateCompiler:
    """Holds the two sandboxed environments of one rule load; compiles template text."""

    def __init__(self) -> None:
        self._plain = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        self._shell = ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, finalize=_shell_quote
        )

    def text(self, source: str) -> jinja2.Template:
        """A target or params template."""
        return _compile(self._plain, source)

    def command(self, source: str) -> jinja2.Template:
        """A ``suggest`` command: every interpolated value is shell-quoted, so none may sit inside quotes."""
        template = _compile(self._shell, source)
        _refuse_quoted_interpolation(self._shell, source)
        return template

    def params(
        self, value: Mapping[str, Any], where: str
    ) -> tuple[CompiledParams, list[tuple[ParamPath, str]]]:
        """Compile every templated string of a nested ``with:``; also return ``(path, problem)`` pairs."""
        problems: list[tuple[ParamPath, str]] = []

        def walk(node: Any, path: ParamPath) -> Any:
            if isinstance(node, str):
                if not is_template(node):
                    return node
                try:
                    return self.text(node)
                except TemplateError as exc:
                    problems.append((path, str(exc)))
                    return node
            if isinstance(node, Mapping):
                return {key: walk(item, (*path, key)) for key, item in node.items()}
            if isinstance(node, list | tuple):
                return [walk(item, (*path, index)) for index, item in enumerate(node)]
            return node

        return CompiledParams(where, walk(dict(value), ())), problems


def is_template(text: str) -> bool:
    """Whether ``text`` holds Jinja syntax; other strings are used as they are."""
    return any(delimiter in text for delimiter in _DELIMITERS)


def render_target(target: CompiledTarget, context: Mapping[str, Any]) -> incidents.TargetRef:
    """Render and validate the target; never raises (an invalid target has ``valid=False`` and ``error``)."""
    fields: list[tuple[str, jinja2.Template | None]] = [
        ("kind", target.kind),
        ("namespace", target.namespace),
        ("name", target.name),
        ("selector", target.selector),
    ]
    rendered: dict[str, str | None] = {}
    problems: list[str] = []
    for field_name, template in fields:
        if template is None:
            rendered[field_name] = None
            continue
        try:
            text = template.render(context)
        except Exception as exc:  # undefined variable, sandbox violation, any error of a filter
            rendered[field_name] = ""
            problems.append(f"target.{field_name}: could not render: {_reason(exc)}")
            continue
        rendered[field_name] = text
        problem = names.check_target_field(field_name, text)
        if problem is not None:
            problems.append(f"target.{field_name}: {problem}")
    return incidents.TargetRef(
        kind=rendered["kind"] or "",
        namespace=rendered["namespace"] or "",
        name=rendered["name"] or "",
        selector=rendered["selector"],
        valid=not problems,
        error="; ".join(problems) or None,
    )


def render_suggestions(rule: CompiledRule, context: Mapping[str, Any]) -> list[incidents.SuggestedCommand]:
    """Render the rule's ``suggest`` commands, values shell-quoted; a failure becomes a shell comment."""
    commands: list[incidents.SuggestedCommand] = []
    for suggestion in rule.suggest:
        try:
            command = suggestion.template.render(context)
        except Exception as exc:  # never raise: a human still gets the other commands
            reason = " ".join(_reason(exc).splitlines())  # one line, so it stays a comment when pasted
            command = f"# could not render: {reason}"
        commands.append(incidents.SuggestedCommand(command=command, hazard=suggestion.hazard))
    return commands


def render_params(template_params: CompiledParams, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render every templated string of a compiled ``with:`` (not shell-quoted); others pass unchanged."""

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, jinja2.Template):
            try:
                return node.render(context)
            except Exception as exc:
                raise TemplateError(f"{path}: could not render: {_reason(exc)}") from exc
        if isinstance(node, Mapping):
            return {key: walk(item, f"{path}.{key}") for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item, f"{path}[{index}]") for index, item in enumerate(node)]
        return node

    result: dict[str, Any] = walk(template_params.tree, template_params.where)
    return result


def alert_context(alert: alerts.Alert, rule: CompiledRule) -> dict[str, Any]:
    """The template context of one alert under one rule, without ``target``."""
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "alert": {
            "status": alert.status,
            "fingerprint": alert.fingerprint,
            "startsAt": alert.starts_at.isoformat().replace("+00:00", "Z"),
            "generatorURL": alert.generator_url,
        },
        "rule": {"name": rule.rule.name, "runbook": rule.rule.runbook, "severity": rule.rule.severity},
    }


def with_target(ctx: Mapping[str, Any], target: incidents.TargetRef) -> dict[str, Any]:
    """A copy of ``ctx`` with the rendered ``target`` added, for params and ``suggest``."""
    return {
        **ctx,
        "target": {
            "kind": target.kind,
            "namespace": target.namespace,
            "name": target.name,
            "selector": target.selector,
        },
    }


def _compile(env: jinja2.Environment, source: str) -> jinja2.Template:
    if not isinstance(source, str):
        raise TemplateError(f"expected a template string, got {type(source).__name__}")
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"bad template {names.show(source)}: {exc.message} (line {exc.lineno})") from exc


def _shell_quote(value: object) -> str:
    return shlex.quote(str(value))


def _refuse_quoted_interpolation(env: jinja2.Environment, source: str) -> None:
    """Reject ``"… {{ x }} …"``, ``'{{ x }}'`` and backticks: the quoted value would be quoted again."""
    quote: str | None = None
    for _, kind, value in env.lex(source):
        if kind == "variable_begin" and quote is not None:
            raise TemplateError(
                f"{{{{ }}}} inside {_QUOTES[quote]} in {names.show(source)}: every value is shell-quoted"
                " for you, so leave {{ }} outside quotes"
            )
        if kind != "data":
            continue
        escaped = False
        for char in value:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "'":
                escaped = True
            elif quote is None and char in "'\"`":
                quote = char
            elif char == quote:
                quote = None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
