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
reason, or a one-line ``# could not render: …`` / ``# dropped: …`` comment. A suggested command is one line
a human can copy: a value holding a line break, another control character or a bidirectional control is
refused by the quoting, and the command is dropped with a note that never quotes the value (so is one
longer than ``COMMAND_LIMIT``). ``render_params`` raises ``TemplateError``.
Never does I/O; never renders data (label values) as a template.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from service.matching import names
from service.model import alerts, incidents

if TYPE_CHECKING:
    from service.matching.compiled import CompiledRule

_DELIMITERS = ("{{", "{%", "{#")
#: The literal head of a templated endpoint: the scheme and the first character of the host (a URL), or
#: the first character of the host; nothing a label renders can then become the scheme, userinfo or host.
_URL_HEAD = re.compile(r"https?://[a-z0-9]")
_HOST_HEAD = re.compile(r"[a-z0-9]")
_URL_PARTS = re.compile(r"https?://(?P<host>[^/?#@:\[\]]+)(?::[0-9]{1,5})?(?:[/?#][^@]*)?")
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
    #: fields whose source holds no Jinja syntax, by name: used as they are (checked once, at load), so that
    #: a constant ``kind: Deployment`` costs nothing per alert
    literals: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledSuggestion:
    source: str
    template: jinja2.Template
    hazard: str | None = None


@dataclass(frozen=True)
class CompiledParams:
    """A ``with:`` mapping whose strings with Jinja delimiters are compiled templates; ``where`` names it.

    ``endpoints`` are the top-level keys that name where a probe connects (``url``, ``host``, …): their
    templates were compiled so that every interpolated value must be one DNS-1123 label, and their
    rendered value is checked again (``check_endpoint``)."""

    where: str
    tree: Mapping[str, Any]
    endpoints: frozenset[str] = frozenset()

    @functools.cached_property
    def templated(self) -> bool:
        """Whether any value is rendered from the alert (such a probe never runs on an invalid target)."""
        return _has_template(self.tree)


class TemplateCompiler:
    """Holds the two sandboxed environments of one rule load; compiles template text."""

    def __init__(self) -> None:
        self._plain = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        self._endpoint = ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, finalize=_one_dns_label
        )
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

    def endpoint(self, key: str, source: str) -> jinja2.Template:
        """A ``url``/``host`` template: the rule writes the scheme and the start of the host, and every
        interpolated value must render as one DNS-1123 label (DESIGN §6: a label never fills a whole host,
        userinfo, port or scheme)."""
        template = _compile(self._endpoint, source)
        head = re.split(r"\{[{%#]", source, maxsplit=1)[0]
        pattern = _URL_HEAD if key == "url" else _HOST_HEAD
        if pattern.match(head) is None:
            shape = "http(s)://<literal host start>…" if key == "url" else "<literal host start>…"
            raise TemplateError(
                f"{key} {names.show(source)}: a template may only fill part of a host the rule writes"
                f" itself; write the scheme and the start of the host literally ({shape})"
            )
        return template

    def params(
        self, value: Mapping[str, Any], where: str, *, endpoints: frozenset[str] = frozenset()
    ) -> tuple[CompiledParams, list[tuple[ParamPath, str]]]:
        """Compile every templated string of a nested ``with:``; also return ``(path, problem)`` pairs.

        ``endpoints``: top-level keys compiled with ``endpoint`` (where the probe or action connects)."""
        problems: list[tuple[ParamPath, str]] = []

        def walk(node: Any, path: ParamPath) -> Any:
            if isinstance(node, str):
                if not is_template(node):
                    return node
                try:
                    if len(path) == 1 and path[0] in endpoints:
                        return self.endpoint(str(path[0]), node)
                    return self.text(node)
                except TemplateError as exc:
                    problems.append((path, str(exc)))
                    return node
            if isinstance(node, Mapping):
                return {key: walk(item, (*path, key)) for key, item in node.items()}
            if isinstance(node, list | tuple):
                return [walk(item, (*path, index)) for index, item in enumerate(node)]
            return node

        return CompiledParams(where, walk(dict(value), ()), frozenset(endpoints)), problems


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
    literals = target.literals
    for field_name, template in fields:
        if template is None:
            rendered[field_name] = None
            continue
        literal = literals.get(field_name)
        if literal is not None:  # checked when the rule was loaded
            rendered[field_name] = literal
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
    """Render the rule's ``suggest`` commands: values shell-quoted, each command one line of at most
    ``COMMAND_LIMIT`` characters. One that cannot be is replaced by a one-line shell comment —
    ``# dropped: a value holds a line break (labels.namespace)``, ``# could not render: …`` — that never
    quotes an alert's value, so pasting it runs nothing."""
    return [
        incidents.SuggestedCommand(command=_suggestion(suggestion, context), hazard=suggestion.hazard)
        for suggestion in rule.suggest
    ]


def _suggestion(suggestion: CompiledSuggestion, context: Mapping[str, Any]) -> str:
    try:
        command = suggestion.template.render(context)
    except UnsafeValue as exc:
        where = _where(exc.value, context)
        return f"# dropped: {exc}" + (f" ({where})" if where else "")
    except Exception as exc:  # never raise: a human still gets the other commands
        return f"# could not render: {_note(_reason(exc), context)}"
    kind = unsafe_character(command)
    if kind is not None:  # the rule's own text (every value was checked by _shell_quote)
        return f"# dropped: the command holds {kind}"
    if len(command) > COMMAND_LIMIT:
        return f"# dropped: the command has {len(command)} characters, more than the {COMMAND_LIMIT} shown"
    return command


def render_params(template_params: CompiledParams, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render every templated string of a compiled ``with:`` (not shell-quoted); others pass unchanged.

    A rendered endpoint (``url``, ``host``) is checked with ``check_endpoint``; ``TemplateError`` when it
    fails, so the probe or action never connects to it."""

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
    for key in template_params.endpoints:
        if isinstance(template_params.tree.get(key), jinja2.Template):
            problem = check_endpoint(key, str(result[key]))
            if problem is not None:
                raise TemplateError(f"{template_params.where}.{key}: {problem}")
    return result


def check_endpoint(key: str, value: str) -> str | None:
    """Why a rendered ``url`` or ``host`` may not be used (None: it may): a URL must be http(s) without
    userinfo, and its host, like a ``host``, a DNS-1123 subdomain (no IP address, no port from a label)."""
    host = value
    if key == "url":
        match = _URL_PARTS.fullmatch(value)
        if match is None:
            return f"{names.show(value)} is not an http(s) URL without userinfo"
        host = match["host"]
    problem = names.check_dns1123_subdomain(host)
    if problem is None and host.rpartition(".")[2].isdigit():
        problem = "an IP address is not a host name a label may fill"
    return None if problem is None else f"host of {names.show(value)}: {problem}"


def _one_dns_label(value: object) -> str:
    """``finalize`` of endpoint templates: every interpolated value is one DNS-1123 label."""
    text = str(value)
    problem = names.check_dns1123_label(text)
    if problem is not None:
        raise TemplateError(f"a value inside a host must be one DNS-1123 label: {problem}")
    return text


def _has_template(node: Any) -> bool:
    if isinstance(node, jinja2.Template):
        return True
    if isinstance(node, Mapping):
        return any(_has_template(item) for item in node.values())
    if isinstance(node, list | tuple):
        return any(_has_template(item) for item in node)
    return False


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


#: the longest suggested command shown; a longer one is dropped with a note (a cut command is another one)
COMMAND_LIMIT = 1000
#: characters that end a line for a terminal, an editor or a chat client (with the other C0/C1 controls,
#: the bidirectional controls and lone surrogates, a suggested command never holds one)
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
#: embeddings, overrides, isolates and marks: they make what follows them read in another order
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: where the data of an alert lives in the template context (``rule`` is the rule's own)
_DATA = ("labels", "annotations", "alert", "target")
#: the longest reason a ``# could not render`` note quotes
_NOTE = 200


class UnsafeValue(ValueError):
    """A value a one-line command cannot hold; the message names what it holds, never the value."""

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"a value holds {kind}")
        self.value = value


def unsafe_character(text: str) -> str | None:
    """What in ``text`` a one-line command must not hold (``"a line break"``, ``"a control character"``,
    ``"a bidirectional control character"``, ``"a lone surrogate"``), or None."""
    if text.isprintable():  # the usual case, at C speed: no control, separator or format character
        return None
    for char in text:
        code = ord(char)
        if char in _LINE_BREAKS:
            return "a line break"
        if code < 0x20 or 0x7F <= code < 0xA0:  # Unicode category Cc: \t \x00 \x1b …
            return "a control character"
        if char in _BIDI:
            return "a bidirectional control character"
        if 0xD800 <= code < 0xE000:
            return "a lone surrogate"
    return None


def _shell_quote(value: object) -> str:
    """The ``finalize`` of ``suggest``: the value as one shell word on the command's line.

    ``shlex.quote`` keeps a newline inside its quotes, and a human copying one line of the result would
    run what follows it; such values raise ``UnsafeValue`` and the command is dropped with a note."""
    text = str(value)
    kind = unsafe_character(text)
    if kind is not None:
        raise UnsafeValue(kind, text)
    return shlex.quote(text)


def _data(context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(path, value)`` of every string the alert put in the context; odd keys are not spelt out."""
    found = []
    for top in _DATA:
        section = context.get(top)
        if not isinstance(section, Mapping):
            continue
        for key, item in section.items():
            if isinstance(item, str):
                plain = isinstance(key, str) and key.isascii() and key.isidentifier() and len(key) <= 64
                found.append((f"{top}.{key}" if plain else f"a key of {top}", item))
    return found


def _where(value: str, context: Mapping[str, Any]) -> str:
    """Which context values (``labels.namespace``) an unsafe rendered ``value`` came from, if one can tell."""
    unsafe = [(path, item) for path, item in _data(context) if unsafe_character(item) is not None]
    exact = [path for path, item in unsafe if item == value]
    within = [path for path, item in unsafe if item and item in value]
    return ", ".join(dict.fromkeys(exact or within[:3]))


def _note(reason: str, context: Mapping[str, Any]) -> str:
    """``reason`` fit for a one-line comment: no value of the alert (an error may quote one), no line
    break or other control character, at most ``_NOTE`` characters."""
    for _path, item in sorted(_data(context), key=lambda pair: -len(pair[1])):
        for shown in (item, repr(item)[1:-1]):  # as it is, and as an error message quotes it
            if len(shown) >= 4 and shown in reason:
                reason = reason.replace(shown, "…")
    text = " ".join("".join(" " if unsafe_character(c) else c for c in reason).split())
    return text if len(text) <= _NOTE else text[: _NOTE - 1] + "…"


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
