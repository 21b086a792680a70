"""The escalation matrix as people: ``REMEDIATOR_ESCALATION_LEVELS`` and the PagerDuty routing keys by
service name, parsed strictly into frozen data (pure).

``REMEDIATOR_ESCALATION_LEVELS`` is a list of ``level=recipients`` entries separated by ``;``::

    1=pagerduty:primary;2=pagerduty:secondary+slack@U0123ABC,S0456DEF;3=pagerduty:managers;4=pagerduty:cto

- a level is 1 to 4, each at most once, numbered from 1 without a gap (the matrix ends at the last one;
  level 4 is still for critical incidents only);
- recipients are joined by ``+``: ``pagerduty:NAME`` pages the PagerDuty service whose routing key is
  ``NAME`` in ``REMEDIATOR_PAGERDUTY_ROUTING_KEYS``; bare ``pagerduty`` pages the single
  ``REMEDIATOR_PAGERDUTY_ROUTING_KEY``; ``slack`` posts to the Slack channel, ``slack@ID,ID`` mentioning
  Slack user ids (``U…``, ``W…``) or user-group ids (``S…``); ``webhook`` and ``log``;
- empty: no matrix of people (every level notifies the incident's routes, as before).

``REMEDIATOR_PAGERDUTY_ROUTING_KEYS`` (or the file ``REMEDIATOR_PAGERDUTY_ROUTING_KEYS_FILE``) is
``name=KEY,name=KEY``; a name is ``[a-z0-9][a-z0-9_-]{0,19}`` (so ``pagerduty:NAME`` fits the outbox's
channel column). Routing keys are secrets: no error here quotes one. Every mistake raises
``errors.ConfigError`` naming the setting and the entry. Imports nothing of ours but ``errors``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from service import errors

LEVELS_SETTING = "REMEDIATOR_ESCALATION_LEVELS"
KEYS_SETTING = "REMEDIATOR_PAGERDUTY_ROUTING_KEYS"
CHANNELS = ("log", "webhook", "slack", "pagerduty")
PAGERDUTY = "pagerduty"
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,19}$")
#: Slack user (``U…``, ``W…``) and user-group (``S…``) ids: upper-case letters and digits
SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,20}$")
_ROUTING_KEY = re.compile(r"^[^\s,=]{1,128}$")
FIRST, LAST = 1, 4
_HOW = {
    "pagerduty": "set REMEDIATOR_PAGERDUTY_ROUTING_KEY, or name a service: pagerduty:NAME",
    "slack": "set REMEDIATOR_SLACK_WEBHOOK_URL",
    "webhook": "set REMEDIATOR_NOTIFY_WEBHOOK_URL",
}


@dataclass(frozen=True)
class Recipient:
    """One recipient of a level: a channel, the PagerDuty service it pages, the Slack ids it mentions."""

    channel: str
    service: str = ""  # the named PagerDuty service (``pagerduty:NAME``); "" for every other recipient
    mentions: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The outbox channel key: ``pagerduty:NAME``, ``pagerduty``, ``slack``, ``webhook`` or ``log``."""
        return f"{PAGERDUTY}:{self.service}" if self.service else self.channel

    @property
    def label(self) -> str:
        """How a holder is shown: the key, and the Slack ids it mentioned (``slack@U0123ABC``)."""
        return f"{self.key}@{','.join(self.mentions)}" if self.mentions else self.key


@dataclass(frozen=True)
class Matrix:
    """The parsed levels; empty when ``REMEDIATOR_ESCALATION_LEVELS`` is unset."""

    levels: Mapping[int, tuple[Recipient, ...]] = field(default_factory=dict)

    @property
    def top(self) -> int:
        """The last level (4 when unset: the runbooks' matrix)."""
        return max(self.levels, default=LAST)

    def recipients(self, level: int) -> tuple[Recipient, ...]:
        return self.levels.get(level, ())


def parse(text: str, *, services: Collection[str] = (), on: Collection[str] = ("log",)) -> Matrix:
    """Parse ``REMEDIATOR_ESCALATION_LEVELS``; ``services`` are the names that have a routing key and
    ``on`` the channels that are configured (``pagerduty``: ``REMEDIATOR_PAGERDUTY_ROUTING_KEY`` is set).
    A recipient nobody configured is an error: a page to nowhere is worse than no start."""
    levels: dict[int, tuple[Recipient, ...]] = {}
    for raw in text.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        number, sep, recipients = (part.strip() for part in entry.partition("="))
        if not sep or not number:
            _fail(entry, "expected level=recipient+recipient, e.g. 2=pagerduty:secondary+slack@U0123ABC")
        level = _level(entry, number)
        if level in levels:
            _fail(entry, f"level {level} appears twice")
        levels[level] = _recipients(entry, recipients, services, on)
    missing = [n for n in range(FIRST, max(levels, default=0)) if n not in levels]
    if missing:
        raise errors.ConfigError(
            f"{LEVELS_SETTING}: level {missing[0]} is missing (levels are numbered from 1 without a gap)"
        )
    return Matrix(levels=levels)


def parse_routing_keys(text: str, *, source: str = KEYS_SETTING) -> dict[str, str]:
    """``name=KEY,name=KEY`` (commas or lines) → {name: KEY}; errors name ``source`` and the entry by its
    position or service name, never by its text (a key may be in it)."""
    keys: dict[str, str] = {}
    for number, raw in enumerate(text.replace("\n", ",").split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        name, sep, key = (part.strip() for part in item.partition("="))
        if not sep or not SERVICE_NAME.match(name):
            raise errors.ConfigError(
                f"{source}: entry {number} is not name=KEY with a service name of lower-case letters, "
                "digits, '-' and '_' (at most 20 characters)"
            )
        if not _ROUTING_KEY.match(key):
            raise errors.ConfigError(f"{source}: service {name!r} has no routing key (expected {name}=KEY)")
        if name in keys:
            raise errors.ConfigError(f"{source}: service {name!r} appears twice")
        keys[name] = key
    return keys


def _level(entry: str, number: str) -> int:
    if not number.isdigit() or not FIRST <= int(number) <= LAST:
        _fail(entry, f"level {number!r} is not 1, 2, 3 or 4")
    return int(number)


def _recipients(
    entry: str, text: str, services: Collection[str], on: Collection[str]
) -> tuple[Recipient, ...]:
    names = [name.strip() for name in text.split("+")]
    if not text or any(not name for name in names):
        _fail(entry, "expected one or more recipients joined by '+', e.g. pagerduty:primary+slack")
    found = [_recipient(entry, name, services, on) for name in names]
    keys = [r.key for r in found]
    repeated = [k for k in keys if keys.count(k) > 1]
    if repeated:
        _fail(entry, f"recipient {repeated[0]!r} appears twice")
    return tuple(found)


def _recipient(entry: str, name: str, services: Collection[str], on: Collection[str]) -> Recipient:
    head, at, ids = (part.strip() for part in name.partition("@"))
    if at and head != "slack":
        _fail(entry, f"only slack takes mentions ({name!r})")
    channel, colon, service = (part.strip() for part in head.partition(":"))
    if channel not in CHANNELS or (colon and channel != PAGERDUTY):
        _fail(entry, f"unknown recipient {name!r} (recipients: pagerduty:NAME, {', '.join(CHANNELS)})")
    if channel == PAGERDUTY and colon:
        if not SERVICE_NAME.match(service):
            _fail(entry, f"{service!r} is not a PagerDuty service name")
        if service not in services:
            _fail(entry, f"PagerDuty service {service!r} has no routing key in {KEYS_SETTING}")
        return Recipient(PAGERDUTY, service=service)
    mentions = _mentions(entry, ids) if at else ()
    if channel not in on and channel != "log":
        _fail(entry, f"{channel} is not configured ({_HOW[channel]})")
    return Recipient(channel, mentions=mentions)


def _mentions(entry: str, text: str) -> tuple[str, ...]:
    ids = [value.strip() for value in text.split(",")]
    bad = [value for value in ids if not SLACK_ID.match(value)]
    if not text or bad:
        _fail(entry, f"{(bad or [''])[0]!r} is not a Slack user (U…, W…) or user-group (S…) id")
    return tuple(dict.fromkeys(ids))


def _fail(entry: str, why: str) -> NoReturn:
    raise errors.ConfigError(f"{LEVELS_SETTING}: invalid entry {entry!r}: {why}")
