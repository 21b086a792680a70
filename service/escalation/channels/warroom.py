"""The war-room channel (``warroom``): a Slack channel per major incident, opened once, through the Slack app.

``escalation.paging`` queues every event of an incident at or above ``REMEDIATOR_WARROOM_SEVERITY`` for this
channel (a drill never gets a room). The first of them opens the room:

1. claim it in the store (``records.war_rooms.claim``) BEFORE asking Slack, so that a second replica — or
   the same notification re-sent after a crash — waits (``errors.Transient``) instead of creating a second
   channel; a claim whose worker died is taken over after ``CLAIM_S``;
2. ``conversations.create`` named ``inc-<yyyymmdd-hhmm>-<rule>`` (the alert's start, UTC; a valid Slack name:
   lower case, ≤ 80 characters, letters, digits, ``-``, ``_``); on ``name_taken`` a short suffix from the
   incident id, then a random one;
3. ``conversations.invite`` of ``REMEDIATOR_WARROOM_INVITE`` (user groups expanded with
   ``usergroups.users.list``), the bundle posted (``render.slack``) and pinned, the bridge link
   (``REMEDIATOR_WARROOM_BRIDGE_URL`` with the incident id) posted and pinned; then the room is open
   (``records.war_rooms.opened``) and the timers record it in the incident (``Lifecycle.war_room_opened``).

Every later event posts one line (what happened, the state, the reason); ``escalate:N`` first invites the
level's Slack ids (the outbox entry's ``mentions``); ``resolve`` posts the Markdown report
(``render.report``) and sets the archive due ``REMEDIATOR_WARROOM_ARCHIVE_AFTER_S`` later; the timers then
queue ``war_room.archive`` here (``conversations.archive``).

Errors are the Slack app's (``slack_app.WebApi``): ratelimited and 5xx are transient, other errors permanent;
a failed invite or pin is logged and skipped (it must not keep the room closed). Delivery is at least once:
a notification retried after part of its work was done may post its line again. The bot token goes only
into the Authorization header. Writes only its own table (``war_rooms``), never an incident.
"""

from __future__ import annotations

import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from service import errors
from service.escalation import paging
from service.escalation.channels import base, serial, slack_app
from service.escalation.render import report, text
from service.escalation.render import slack as render
from service.model import levels
from service.records import incidents as incident_rows
from service.records import outbox, war_rooms
from service.records.outbox import Delivery
from service.records.store import Store
from service.settings import Settings

log = structlog.get_logger(__name__)

CHANNEL = paging.WARROOM
#: the event the timers queue when a resolved incident's room is due to be archived
ARCHIVE = "war_room.archive"
#: a claim not turned into an open room within this long is taken over (its worker died)
CLAIM_S = 60.0
#: how long a notification waits for another worker to open the room
WAIT_S = 3.0
NAME_LIMIT = 80
#: Slack's markdown block takes up to 12,000 characters
REPORT_LIMIT = 11_000
_NOT_NAME = re.compile(r"[^a-z0-9_-]+")
_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def room_name(rule: str, started_at: float) -> str:
    """``inc-20261206-0655-database-failure``: a valid Slack channel name from the alert's start and rule."""
    stamp = datetime.fromtimestamp(started_at, UTC).strftime("%Y%m%d-%H%M")
    slug = _NOT_NAME.sub("-", rule.lower()).strip("-_") or "incident"
    return f"inc-{stamp}-{slug}"[:NAME_LIMIT].rstrip("-_")


def suffixed(name: str, suffix: str) -> str:
    """``name`` with ``-suffix``, still within Slack's 80 characters."""
    tail = "-" + _NOT_NAME.sub("", suffix.lower())
    return name[: NAME_LIMIT - len(tail)].rstrip("-_") + tail


def bridge_url(template: str, incident_id: str) -> str | None:
    """The video bridge of an incident: ``REMEDIATOR_WARROOM_BRIDGE_URL`` with its id; None when unset."""
    if not template:
        return None
    return template.replace("{incident_id}", urllib.parse.quote(incident_id, safe=""))


def channel_url(channel_id: str) -> str:
    """A link that opens the channel in Slack, whatever the workspace."""
    return f"https://slack.com/app_redirect?channel={urllib.parse.quote(channel_id, safe='')}"


def _code(exc: errors.Permanent) -> str:
    """Slack's error code of a refused call (``slack conversations.create: name_taken`` → ``name_taken``)."""
    return str(exc).rpartition(": ")[2]


class WarRoomNotifier:
    """Opens each major incident's war room once and keeps it told (see the module docstring)."""

    name = CHANNEL

    def __init__(
        self,
        api: slack_app.WebApi,
        store: Store,
        *,
        invite: Sequence[str] = (),
        bridge: str = "",
        base_url: str = "",
        archive_after_s: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self._store = store
        self._invite = tuple(invite)
        self._bridge = bridge
        self._base_url = base_url.rstrip("/")
        self._archive_after_s = archive_after_s
        self._clock = clock
        self._serial = serial.PerIncident()
        self._holding: set[str] = set()  # rooms whose opening this worker claimed and has not finished

    async def send(self, delivery: Delivery) -> None:
        async with self._serial(delivery.incident_id):
            if delivery.event == ARCHIVE:
                await self._archive(delivery.incident_id)
                return
            async with self._store.read() as conn:
                row = await incident_rows.get_row(conn, delivery.incident_id)
            now = await slack_app.standing(self._store, delivery.incident_id, base.bundle_of(delivery))
            if row is None or row.get("drill") or (now.bundle is not None and now.bundle.drill):
                log.info("warroom.skipped", incident_id=delivery.incident_id, reason="drill or unknown")
                return
            room = await self._opened(row, now)
            assert room.channel_id is not None
            await self._invite_ids(room.channel_id, delivery.payload.get("mentions") or ())
            if delivery.event == "trigger":
                return
            await self._post(room.channel_id, {"text": self._line(now, delivery.event)})
            if delivery.event == "resolve":
                await self._report(room.channel_id, delivery.incident_id)

    async def _opened(self, row: dict[str, Any], now: slack_app.Standing) -> war_rooms.Room:
        """The incident's open room: opened here when nobody else is opening it (see the docstring)."""
        incident_id = str(row["id"])
        room = await war_rooms.get(self._store, incident_id)
        if room is not None and room.ready:
            return room
        if incident_id not in self._holding:
            name = room_name(str(row["rule"]), incident_rows.clock_start(row))
            claimed = await war_rooms.claim(
                self._store, incident_id, name=name, now=self._clock(), stale_s=CLAIM_S
            )
            if not claimed:
                raise errors.Transient("war room being opened by another worker", delay=WAIT_S)
            self._holding.add(incident_id)
            room = await war_rooms.get(self._store, incident_id)
        assert room is not None
        if room.channel_id is None:
            try:
                room = await self._create(room)
            except errors.Permanent:
                self._holding.discard(incident_id)
                await war_rooms.release(self._store, incident_id)
                raise
        assert room.channel_id is not None
        await self._open(room.channel_id, now)
        url = channel_url(room.channel_id)
        await war_rooms.opened(self._store, incident_id, url=url)
        self._holding.discard(incident_id)
        log.info("warroom.opened", incident_id=incident_id, room=room.name)
        return replace(room, url=url)

    async def _create(self, room: war_rooms.Room) -> war_rooms.Room:
        """``conversations.create``, trying a suffix of the incident id, then a random one, when taken."""
        names = [
            room.name,
            suffixed(room.name, room.incident_id[-6:]),
            suffixed(room.name, room.incident_id[-4:] + secrets.token_hex(2)),
        ]
        for attempt, name in enumerate(names):
            try:
                answer = await self.api.call("conversations.create", {"name": name, "is_private": False})
            except errors.Permanent as exc:
                if _code(exc) == "name_taken" and attempt < len(names) - 1:
                    continue
                raise
            channel = answer.get("channel") or {}
            channel_id, final = str(channel.get("id") or ""), str(channel.get("name") or name)
            if not channel_id:
                raise errors.Permanent("slack conversations.create answered without a channel id")
            await war_rooms.created(
                self._store, room.incident_id, name=final, channel_id=channel_id, now=self._clock()
            )
            return replace(room, name=final, channel_id=channel_id)
        raise AssertionError("unreachable: the last name raised or returned")

    async def _open(self, channel_id: str, now: slack_app.Standing) -> None:
        """Invite the configured people, post and pin the bundle and the bridge link."""
        await self._invite_ids(channel_id, self._invite)
        if now.bundle is not None:
            event = render.app_event(now.state, acknowledged=now.acked_by is not None)
            shown = render.render(now.bundle, event=event)
        else:
            shown = render.bare(now.incident_id, event="trigger")
        await self._pin(channel_id, await self._post(channel_id, shown))
        bridge = bridge_url(self._bridge, now.incident_id)
        if bridge is not None:
            words = f"Video bridge: {text.slack_link(bridge, bridge)}"
            await self._pin(channel_id, await self._post(channel_id, {"text": words}))

    async def _invite_ids(self, channel_id: str, ids: Sequence[str]) -> None:
        """Invite Slack users and the members of user groups; a refusal is logged, never fatal."""
        users: list[str] = []
        for value in ids:
            if _USER.match(value):
                users.append(value)
            elif levels.SLACK_ID.match(value):
                users.extend(await self._members(value))
        users = list(dict.fromkeys(users))
        if not users:
            return
        body = {"channel": channel_id, "users": ",".join(users), "force": True}
        try:
            await self.api.call("conversations.invite", body)
        except errors.Permanent as exc:
            if _code(exc) not in ("already_in_channel", "cant_invite_self"):
                log.warning("warroom.invite_failed", channel=channel_id, reason=str(exc))

    async def _members(self, group: str) -> list[str]:
        try:
            answer = await self.api.call("usergroups.users.list", {"usergroup": group})
        except errors.Permanent as exc:
            log.warning("warroom.group_unknown", group=group, reason=str(exc))
            return []
        return [str(u) for u in answer.get("users") or [] if _USER.match(str(u))]

    async def _post(self, channel_id: str, message: dict[str, Any]) -> str:
        """Post ``message`` in the room; its ``ts``."""
        answer = await self.api.call(
            "chat.postMessage", {"channel": channel_id, "unfurl_links": False, **message}
        )
        return str(answer.get("ts"))

    async def _pin(self, channel_id: str, ts: str) -> None:
        try:
            await self.api.call("pins.add", {"channel": channel_id, "timestamp": ts})
        except errors.Permanent as exc:
            if _code(exc) != "already_pinned":
                log.warning("warroom.pin_failed", channel=channel_id, reason=str(exc))

    def _line(self, now: slack_app.Standing, event: str) -> str:
        """One line per event: what happened (with the reason), and the state the incident is in."""
        said = text.reminder_headline(event) or render.reply(now.bundle, event, acknowledged_by=now.acked_by)
        return f"{said} · state: {now.state}"

    async def _report(self, channel_id: str, incident_id: str) -> None:
        """Post the incident's Markdown report and set the room's archive due."""
        found = await incident_rows.incident_detail(self._store, incident_id, now=self._clock())
        if found is not None:
            detail, bundle = found
            detail["notifications"] = await outbox.for_incident(self._store, incident_id)
            written = report.render(detail, bundle, checklist=[], now=self._clock())
            if len(written) > REPORT_LIMIT:
                link = f"{self._base_url}/v1/incidents/{incident_id}/report"
                written = written[:REPORT_LIMIT] + f"\n\n… the whole report: {link}"
            message = {"text": "Incident report", "blocks": [{"type": "markdown", "text": written}]}
            await self._post(channel_id, message)
        await war_rooms.archive_at(self._store, incident_id, at=self._clock() + self._archive_after_s)

    async def _archive(self, incident_id: str) -> None:
        room = await war_rooms.get(self._store, incident_id)
        if room is None or room.channel_id is None or room.archived_at is not None:
            return
        try:
            await self.api.call("conversations.archive", {"channel": room.channel_id})
        except errors.Permanent as exc:
            if _code(exc) != "already_archived":
                raise
        await war_rooms.archived(self._store, incident_id, now=self._clock())
        log.info("warroom.archived", incident_id=incident_id, room=room.name)


def from_settings(settings: Settings, session: aiohttp.ClientSession, store: Store) -> WarRoomNotifier:
    """The war room of ``REMEDIATOR_SLACK_BOT_TOKEN`` (set, and war rooms on: checked by the caller)."""
    assert settings.slack_bot_token is not None
    api = slack_app.WebApi(session, settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    return WarRoomNotifier(
        api,
        store,
        invite=settings.warroom_invite,
        bridge=settings.warroom_bridge_url,
        base_url=settings.base_url,
        archive_after_s=settings.warroom_archive_after_s,
    )
