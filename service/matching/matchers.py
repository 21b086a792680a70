"""Alertmanager label matchers: parsing ``name=value`` text and testing a label set against it.

Owns the matcher syntax of a rule's ``match:`` list and its semantics, which are Alertmanager's:

- operators ``=``, ``!=``, ``=~``, ``!~``; values unquoted or double-quoted with the escapes ``\\"``,
  ``\\\\`` and ``\\n`` (any other backslash is kept literally, as Alertmanager does);
- regexes are fully anchored, ``^(?:REGEX)$``, so ``alertname=~"Coord"`` does not match
  ``CoordinatorDown``;
- a missing label is the empty string: ``foo=""`` matches an alert without ``foo``, ``foo!=""`` requires it.

Regexes compile once, in the constructor; ``matches`` is the hot path and does no parsing.
Never does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)
_LEADING_FLAGS = re.compile(r"\(\?([ims]+)\)")
_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


class MatcherError(ValueError):
    """A matcher that does not parse, or whose regex does not compile."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; a label the alert lacks is tested as the empty string."""

    name: str
    op: Op
    value: str
    _test: Callable[[str], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        test: Callable[[str], bool]
        if self.op == "=":
            test = self.value.__eq__
        elif self.op == "!=":
            test = self.value.__ne__
        elif self.op in ("=~", "!~"):
            try:
                regex = re.compile(_anchored(self.value))
            except re.error as exc:
                raise MatcherError(f"bad regex in matcher {str(self)!r}: {exc.msg}") from exc
            test = _regex_test(regex, want=self.op == "=~")
        else:
            raise MatcherError(f"unknown matcher operator {self.op!r}; use =, !=, =~ or !~")
        object.__setattr__(self, "_test", test)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self._test(labels.get(self.name, ""))

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{quoted}"'


def _anchored(value: str) -> str:
    """``^(?:value)$``; a leading ``(?i)`` (Go takes it anywhere) becomes the ``(?i:…)`` Python needs."""
    flags = _LEADING_FLAGS.match(value)
    if flags is not None:
        value = f"(?{flags.group(1)}:{value[flags.end() :]})"
    return f"^(?:{value})$"


def _regex_test(regex: re.Pattern[str], *, want: bool) -> Callable[[str], bool]:
    fullmatch = regex.fullmatch  # fullmatch: `$` alone would also match before a trailing newline

    def test(value: str) -> bool:
        return (fullmatch(value) is not None) is want

    return test


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``{any: [ALT, ...]}``: holds when every matcher of at least one alternative holds."""

    alternatives: tuple[tuple[Matcher, ...], ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        for group in self.alternatives:
            for matcher in group:
                if not matcher.matches(labels):
                    break
            else:
                return True
        return False


#: One top-level entry of ``match:``; a rule matches when all its entries hold.
MatchGroup: TypeAlias = Matcher | AnyOf


def parse_matcher(text: str) -> Matcher:
    """Parse ``name<op>value`` (Alertmanager syntax) into a compiled Matcher."""
    if not isinstance(text, str):
        raise MatcherError(f"matcher must be a string such as 'alertname=\"X\"', got {text!r}")
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise MatcherError(
            f"bad matcher {text!r}: expected <label><op><value> with a label name of letters, digits and '_'"
            " and op one of =, !=, =~, !~"
        )
    name, op, raw = found.groups()
    return Matcher(name, op, _unquote(raw, text))  # type: ignore[arg-type]  # op is one of the four


def _unquote(raw: str, text: str) -> str:
    """Alertmanager's value unescaping: optional surrounding quotes, escapes \\" \\\\ \\n."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    closed = False
    i = 0
    while i < len(body):
        char = body[i]
        if closed:
            raise MatcherError(f"bad matcher {text!r}: text after the closing quote")
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            if not quoted:
                raise MatcherError(f"bad matcher {text!r}: unescaped double quote in an unquoted value")
            closed = True
        else:
            out.append(char)
        i += 1
    if quoted and not closed:
        raise MatcherError(f"bad matcher {text!r}: missing closing double quote")
    return "".join(out)
