"""The route table as data: ``REMEDIATOR_NOTIFY_ROUTES`` parsed strictly into a frozen ``Table`` (pure).

``REMEDIATOR_NOTIFY_ROUTES`` is a list of ``selector=channels`` entries separated by ``;``::

    critical=pagerduty+slack;warning=slack;rule:redis-failure=pagerduty;*=log

- a selector is a severity (``critical``, ``high``, ``warning``, ``info``), ``rule:<rule name>`` or ``*``;
- channels are ``log``, ``webhook``, ``slack``, ``pagerduty`` and ``slack_app`` (the Slack app: one
  message per incident, updated in place, with buttons) joined by ``+``;
- whitespace around names is ignored; each selector may appear once.

``parse`` runs once, when the settings load (``Settings.route_table``): a mistake stops the service with
``errors.ConfigError`` naming the setting and the entry. What the table means for an incident (which entry
wins, which channels are on) is ``escalation.routes``. Imports nothing of ours but ``errors``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from service import errors

CHANNELS = ("log", "webhook", "slack", "pagerduty", "slack_app")
SEVERITIES = ("critical", "high", "warning", "info")
_RULE_NAME = re.compile(r"^[a-z0-9][-a-z0-9]{0,62}$")  # as the rule loader accepts them
_SETTING = "REMEDIATOR_NOTIFY_ROUTES"


@dataclass(frozen=True)
class Table:
    """The parsed route table, before it meets the channels that are on."""

    by_rule: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    by_severity: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default: tuple[str, ...] | None = None  # the ``*`` entry


def parse(text: str) -> Table:
    """Parse ``REMEDIATOR_NOTIFY_ROUTES``; raises ``errors.ConfigError`` naming the setting and the entry."""
    by_rule: dict[str, tuple[str, ...]] = {}
    by_severity: dict[str, tuple[str, ...]] = {}
    default: tuple[str, ...] | None = None
    for raw in text.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        selector, sep, targets = (part.strip() for part in entry.partition("="))
        if not sep or not selector:
            _fail(entry, "expected selector=channel+channel, e.g. critical=pagerduty+slack")
        channels = _channels(entry, targets)
        if selector == "*":
            if default is not None:
                _fail(entry, "'*' appears twice")
            default = channels
        elif selector.startswith("rule:"):
            by_rule[_rule_name(entry, selector, by_rule)] = channels
        elif selector in SEVERITIES:
            if selector in by_severity:
                _fail(entry, f"severity {selector!r} appears twice")
            by_severity[selector] = channels
        else:
            _fail(entry, f"unknown selector {selector!r}: use one of {', '.join(SEVERITIES)}, rule:NAME or *")
    return Table(by_rule=by_rule, by_severity=by_severity, default=default)


def _rule_name(entry: str, selector: str, seen: Mapping[str, object]) -> str:
    """The rule a ``rule:NAME`` selector names, new to ``seen``; raises ``errors.ConfigError`` otherwise."""
    name = selector.removeprefix("rule:").strip()
    if not _RULE_NAME.match(name):
        _fail(entry, f"{name!r} is not a rule name (lower-case letters, digits and '-')")
    if name in seen:
        _fail(entry, f"rule {name!r} appears twice")
    return name


def check_fallback(name: str) -> str:
    """``REMEDIATOR_NOTIFY_FALLBACK``: empty or a channel name; raises ``errors.ConfigError`` otherwise."""
    name = name.strip()
    if name and name not in CHANNELS:
        raise errors.ConfigError(
            f"REMEDIATOR_NOTIFY_FALLBACK: unknown channel {name!r} (channels: {', '.join(CHANNELS)})"
        )
    return name


def _channels(entry: str, text: str) -> tuple[str, ...]:
    names = [name.strip() for name in text.split("+")]
    if not text or any(not name for name in names):
        _fail(entry, "expected one or more channels joined by '+', e.g. pagerduty+slack")
    unknown = [name for name in names if name not in CHANNELS]
    if unknown:
        _fail(entry, f"unknown channel {unknown[0]!r} (channels: {', '.join(CHANNELS)})")
    return tuple(dict.fromkeys(names))


def _fail(entry: str, why: str) -> NoReturn:
    raise errors.ConfigError(f"{_SETTING}: invalid entry {entry!r}: {why}")
