"""Who hears each event of an incident: the route table and the escalation matrix of people, met once
(pure: no I/O, no clock; the channels already paged are passed in).

Without ``REMEDIATOR_ESCALATION_LEVELS`` every level notifies the incident's route channels, as before.
With it, ``pagerduty`` in an incident's route means "this incident pages the levels":

======================  =========================================================================
event                   who hears it
======================  =========================================================================
``trigger`` (level 1)   the route's channels, its ``pagerduty`` replaced by level 1's recipients
                        (information channels still follow the route), Slack with level 1's mentions
``escalate:N``          exactly level N's recipients: a new page to them (unset: the route's channels)
``acknowledge``,        the route's information channels and every channel paged for the incident
``resolve``             (at any level), so an ack at level 2 acknowledges both pages; PagerDuty
                        hears no ack or resolve of an alert it never got (a held, linked incident)
``mitigated``           the route's information channels and every PagerDuty service already paged
``announce``,           the route's information channels only: PagerDuty never gets them
``linked`` (and others)
======================  =========================================================================

An incident whose route has no ``pagerduty`` pages nobody through the levels: its escalations go to its
route's channels as before, so ``warning=slack`` never pages a secondary on-call. Channel keys are the
outbox's: ``pagerduty:NAME``, ``pagerduty``, ``slack``, ``webhook``, ``log``.

The war room (``warroom``, ``REMEDIATOR_WARROOM_SEVERITY``) hears every event of an incident at or above
that severity, whatever the routes say (a route naming it changes nothing); its ``trigger`` and
``escalate:N`` carry the level's Slack mentions (who is invited to the room as levels rise). It pages
nobody, so it is never among the holders of a level.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from service.escalation import matrix as runbook
from service.escalation import routes
from service.model import levels
from service.model import severity as severities
from service.settings import Settings

Route = Callable[[str, str], Sequence[str]]

#: the events whose notification goes to every channel already paged as well
TO_PAGED = frozenset({"acknowledge", "resolve"})
#: the war room's outbox channel key (``escalation.channels.warroom``)
WARROOM = "warroom"


@dataclass(frozen=True)
class Notice:
    """One outbox entry to queue: the channel key and the Slack ids its message mentions."""

    channel: str
    mentions: tuple[str, ...] = ()


class Paging:
    """The route table and the matrix of people, asked per event; built once at start."""

    def __init__(self, matrix: levels.Matrix, route: Route, *, warroom: str = "") -> None:
        self._matrix = matrix
        self._route = route
        self._warroom = severities.rank(warroom)  # 0: no war rooms

    @property
    def levels_set(self) -> bool:
        """True when ``REMEDIATOR_ESCALATION_LEVELS`` names recipients per level."""
        return bool(self._matrix.levels)

    @property
    def top(self) -> int:
        """The last level of the matrix (4, the runbooks', when levels are unset)."""
        return self._matrix.top if self.levels_set else runbook.TOP

    def notices(self, event: str, severity: str, rule: str, *, paged: Collection[str] = ()) -> list[Notice]:
        """Who hears ``event`` of an incident of ``severity`` and ``rule``; ``paged`` are the channels that
        got its ``trigger`` or an ``escalate:N`` (needed for acknowledge, resolve and mitigated); the war
        room last, when the incident is severe enough."""
        found = [n for n in self._notices(event, severity, rule, paged) if n.channel != WARROOM]
        if self._warroom and severities.rank(severity) >= self._warroom:
            found.append(Notice(WARROOM, self._invited(event)))
        return found

    def _notices(self, event: str, severity: str, rule: str, paged: Collection[str]) -> list[Notice]:
        name, level = _parsed(event)
        channels = list(self._route(severity, rule))
        pages = self.levels_set and levels.PAGERDUTY in channels
        if name == "trigger" and pages:
            return _merged(self._level(1), [Notice(c) for c in _info(channels)])
        if name == "escalate" and pages:
            return self._level(level)
        if name in ("trigger", "escalate"):
            return [Notice(c) for c in channels]
        if name in TO_PAGED:
            return [Notice(c) for c in dict.fromkeys([*_info(channels), *paged])]
        if name == "mitigated":
            return [Notice(c) for c in dict.fromkeys([*_info(channels), *filter(_pages, paged)])]
        return [Notice(c) for c in _info(channels)]

    def holders(self, level: int, severity: str, rule: str) -> list[str]:
        """Labels of who was paged at ``level`` (``L1 pagerduty:primary``, ``L2 slack@U0123ABC``); the
        route's channels when levels are unset (or the incident's route does not page). ``log`` is nobody."""
        event = "trigger" if level <= 1 else f"escalate:{level}"
        notices = self.notices(event, severity, rule)
        return [f"L{level} {_label(n)}" for n in notices if n.channel not in ("log", WARROOM)]

    def _invited(self, event: str) -> tuple[str, ...]:
        """The Slack ids of the level ``event`` pages (``trigger``: 1, ``escalate:N``: N), to invite to the
        war room; none for other events or when levels are unset."""
        name, level = _parsed(event)
        if name not in ("trigger", "escalate") or not self.levels_set:
            return ()
        return tuple(dict.fromkeys(m for n in self._level(level or 1) for m in n.mentions))

    def _level(self, level: int | None) -> list[Notice]:
        recipients = self._matrix.recipients(level if level is not None else 1)
        return [Notice(r.key, r.mentions) for r in recipients]


def from_settings(settings: Settings, table: routes.Routes) -> Paging:
    """The settings' matrix (parsed when they loaded) met with the route table that is on."""
    return Paging(
        settings.escalation_matrix,
        table.channels_for,
        warroom=settings.warroom_severity if settings.warroom_on else "",
    )


def unset(route: Route) -> Paging:
    """Paging without a matrix of people: every level notifies ``route``'s channels (today's behaviour)."""
    return Paging(levels.Matrix(), route)


def _parsed(event: str) -> tuple[str, int | None]:
    """``escalate:3`` → ("escalate", 3); ``trigger`` → ("trigger", None)."""
    name, _sep, number = event.partition(":")
    return name, int(number) if number.isdigit() else None


def _pages(channel: str) -> bool:
    return channel == levels.PAGERDUTY or channel.startswith(f"{levels.PAGERDUTY}:")


def _info(channels: Sequence[str]) -> list[str]:
    """The information channels of a route: everything but PagerDuty."""
    return [c for c in channels if not _pages(c)]


def _merged(first: list[Notice], more: list[Notice]) -> list[Notice]:
    """``first`` then the channels of ``more`` not in it; a channel in both has the mentions of both."""
    by_channel = {n.channel: n for n in first}
    for notice in more:
        known = by_channel.get(notice.channel)
        mentions = tuple(dict.fromkeys([*(known.mentions if known else ()), *notice.mentions]))
        by_channel[notice.channel] = Notice(notice.channel, mentions)
    return list(by_channel.values())


def _label(notice: Notice) -> str:
    return f"{notice.channel}@{','.join(notice.mentions)}" if notice.mentions else notice.channel
