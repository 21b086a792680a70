"""The war room of a major incident in the incident's life: recorded once opened (``war_room_opened``: the
``war_room.opened`` event and the stored bundle's ``war_room``), and its archive queued once due
(``war_room_archive``: the ``war_room.archive_due`` event and a ``war_room.archive`` notification for the
``warroom`` channel). The channel (``escalation.channels.warroom``) opens, tells and archives the room in
Slack and keeps ``war_rooms``; the timers find what is due. Never sends anything itself."""

from __future__ import annotations

from dataclasses import dataclass

from service.escalation import paging
from service.escalation.channels import warroom as channel
from service.lifecycle.core import UNRESOLVED, Core, _changed, _stored
from service.model import incidents
from service.records import incidents as incident_rows
from service.records import outbox, war_rooms
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn


@dataclass(frozen=True)
class WarRooms(Core):
    """War-room transitions of the incident's life."""

    #: ``REMEDIATOR_WARROOM_BRIDGE_URL``: the video bridge, a URL template with ``{incident_id}``
    warroom_bridge: str = ""

    async def war_room_opened(self, conn: Conn, room: war_rooms.Room, *, now: float) -> IncidentRow | None:
        """The incident's room is open: its name and links go into the stored bundle, and the timeline
        says so (once; a bundle that lost its room again, written by a transition that read it before,
        gets it back without a second event)."""
        incident = await incident_rows.get_row(conn, room.incident_id)
        if incident is None:
            return None
        shown = incidents.WarRoom(
            name=room.name, url=room.url, bridge_url=channel.bridge_url(self.warroom_bridge, room.incident_id)
        )
        stored = _changed(incident_rows.load_bundle(incident["bundle"]), war_room=shown)
        if await war_rooms.recorded(conn, room.incident_id):  # a transition dropped it: put it back
            await incident_rows.update(conn, room.incident_id, **_stored(stored))
            return None
        return await self._move(
            conn,
            room.incident_id,
            now=now,
            from_states=UNRESOLVED | {"resolved"},
            values=_stored(stored),
            event=(war_rooms.OPENED_EVENT, f"war room #{room.name} opened", shown.model_dump(mode="json")),
        )

    async def war_room_archive(self, conn: Conn, room: war_rooms.Room, *, now: float) -> bool:
        """The resolved incident's room is due to be archived: queue it for the ``warroom`` channel (once)."""
        await war_rooms.archive_queued(conn, room.incident_id)
        queued = await outbox.enqueue(
            self.store,
            conn,
            incident_id=room.incident_id,
            channel=paging.WARROOM,
            event=channel.ARCHIVE,
            payload={},
            now=now,
        )
        if queued:
            await self._event(
                conn, room.incident_id, now, "war_room.archive_due", f"war room #{room.name} is archived"
            )
        return queued
