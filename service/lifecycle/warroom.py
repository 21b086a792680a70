"""The war room of a major incident: opened once (``war_room_opened``), its state changes posted there,
archived after the incident resolves."""

from __future__ import annotations

from service.lifecycle.core import Core


class WarRooms(Core):
    """War-room transitions of the incident's life."""
