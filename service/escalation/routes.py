"""The route table: which channels hear about an incident, by rule or severity (pure: no I/O, no clock).

``REMEDIATOR_NOTIFY_ROUTES`` is a list of ``selector=channels`` entries separated by ``;``::

    critical=pagerduty+slack;warning=slack;rule:redis-failure=pagerduty;*=log

- a selector is a severity (``critical``, ``high``, ``warning``, ``info``), ``rule:<rule name>`` or ``*``;
- channels are ``log``, ``webhook``, ``slack`` and ``pagerduty`` joined by ``+``;
- a ``rule:`` entry wins over a severity entry, which wins over ``*``; without ``*``, an incident that no
  entry names goes to every channel that is on (a missed page is worse than an extra message);
- ``log`` is always included; channels the table names but that are not configured are dropped, with a
  warning at start; whitespace around names is ignored; each selector may appear once.

An empty table sends every incident to every channel that is on. ``REMEDIATOR_NOTIFY_FALLBACK`` names the
channel that gets a notification whose own channel failed for good (``fallback_for``).

The table is parsed strictly when the settings load: a mistake stops the service with an error that names
the setting and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

import structlog

from service import errors

log = structlog.get_logger(__name__)

CHANNELS = ("log", "webhook", "slack", "pagerduty")
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
            name = selector.removeprefix("rule:").strip()
            if not _RULE_NAME.match(name):
                _fail(entry, f"{name!r} is not a rule name (lower-case letters, digits and '-')")
            if name in by_rule:
                _fail(entry, f"rule {name!r} appears twice")
            by_rule[name] = channels
        elif selector in SEVERITIES:
            if selector in by_severity:
                _fail(entry, f"severity {selector!r} appears twice")
            by_severity[selector] = channels
        else:
            _fail(entry, f"unknown selector {selector!r}: use one of {', '.join(SEVERITIES)}, rule:NAME or *")
    return Table(by_rule=by_rule, by_severity=by_severity, default=default)


def check_fallback(name: str) -> str:
    """``REMEDIATOR_NOTIFY_FALLBACK``: empty or a channel name; raises ``errors.ConfigError`` otherwise."""
    name = name.strip()
    if name and name not in CHANNELS:
        raise errors.ConfigError(
            f"REMEDIATOR_NOTIFY_FALLBACK: unknown channel {name!r} (channels: {', '.join(CHANNELS)})"
        )
    return name


class Routes:
    """The route table applied to the channels that are on; built once at start, asked per incident."""

    def __init__(self, table: Table, *, configured: Collection[str], fallback: str = "") -> None:
        on = set(configured) | {"log"}
        named = {c for chans in _all(table) for c in chans}
        for channel in sorted(named - on):
            log.warning("notify.route_dropped", channel=channel, reason="channel is not configured")
        self._on = [c for c in CHANNELS if c in on]
        self._by_rule = {rule: self._keep(chans) for rule, chans in table.by_rule.items()}
        self._by_severity = {sev: self._keep(chans) for sev, chans in table.by_severity.items()}
        self._default = self._keep(table.default) if table.default is not None else list(self._on)
        self._fallback: str | None = fallback or None
        if self._fallback is not None and self._fallback not in on:
            log.warning("notify.fallback_dropped", channel=self._fallback, reason="channel is not configured")
            self._fallback = None

    @property
    def rules(self) -> frozenset[str]:
        """Rule names the table routes (to warn about names no loaded rule has)."""
        return frozenset(self._by_rule)

    def channels_for(self, severity: str, rule: str) -> list[str]:
        """The channels of an incident: its rule's entry, else its severity's, else ``*``; ``log`` first."""
        if rule in self._by_rule:
            return list(self._by_rule[rule])
        return list(self._by_severity.get(severity, self._default))

    def fallback_for(self, channel: str) -> str | None:
        """Where a notification that failed for good on ``channel`` goes next; None: nowhere (one hop)."""
        return None if self._fallback == channel else self._fallback

    def _keep(self, channels: tuple[str, ...]) -> list[str]:
        return ["log", *(c for c in channels if c != "log" and c in self._on)]


def compile_routes(text: str, *, configured: Collection[str], fallback: str = "") -> Routes:
    """Parse ``text`` and apply it to the ``configured`` channels (see ``Routes``)."""
    return Routes(parse(text), configured=configured, fallback=check_fallback(fallback))


def _channels(entry: str, text: str) -> tuple[str, ...]:
    names = [name.strip() for name in text.split("+")]
    if not text or any(not name for name in names):
        _fail(entry, "expected one or more channels joined by '+', e.g. pagerduty+slack")
    unknown = [name for name in names if name not in CHANNELS]
    if unknown:
        _fail(entry, f"unknown channel {unknown[0]!r} (channels: {', '.join(CHANNELS)})")
    return tuple(dict.fromkeys(names))


def _all(table: Table) -> list[tuple[str, ...]]:
    return [*table.by_rule.values(), *table.by_severity.values(), *([table.default] if table.default else [])]


def _fail(entry: str, why: str) -> NoReturn:
    raise errors.ConfigError(f"{_SETTING}: invalid entry {entry!r}: {why}")
