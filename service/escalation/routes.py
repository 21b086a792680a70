"""The route table applied: which channels hear about an incident, by rule or severity (no I/O, no clock).

The table itself (``REMEDIATOR_NOTIFY_ROUTES``, its syntax and strict parsing) is ``model.routes``,
parsed once when the settings load. Here it meets the channels that are on:

- a ``rule:`` entry wins over a severity entry, which wins over ``*``; without ``*``, an incident that no
  entry names goes to every channel that is on (a missed page is worse than an extra message);
- ``log`` is always included; channels the table names but that are not configured are dropped, with a
  warning at start.

An empty table sends every incident to every channel that is on. ``REMEDIATOR_NOTIFY_FALLBACK`` names the
channel that gets a notification whose own channel failed for good (``fallback_for``).
"""

from __future__ import annotations

from collections.abc import Collection

import structlog

from service.model import routes
from service.settings import Settings

log = structlog.get_logger(__name__)


class Routes:
    """The route table applied to the channels that are on; built once at start, asked per incident."""

    def __init__(self, table: routes.Table, *, configured: Collection[str], fallback: str = "") -> None:
        on = set(configured) | {"log"}
        named = {c for chans in _all(table) for c in chans}
        for channel in sorted(named - on):
            log.warning("notify.route_dropped", channel=channel, reason="channel is not configured")
        self._on = [c for c in routes.CHANNELS if c in on]
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
    return Routes(routes.parse(text), configured=configured, fallback=routes.check_fallback(fallback))


def from_settings(settings: Settings) -> Routes:
    """The settings' table (parsed when they loaded) applied to the channels that are on (warns at start)."""
    return Routes(
        settings.route_table, configured=settings.notify_channels, fallback=settings.notify_fallback
    )


def _all(table: routes.Table) -> list[tuple[str, ...]]:
    return [*table.by_rule.values(), *table.by_severity.values(), *([table.default] if table.default else [])]
