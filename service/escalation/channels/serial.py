"""One event of an incident at a time in this process, in arrival order, for the channels that keep state per
incident in Slack (the app's message, the war room): an asyncio lock per incident, dropped when unused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class PerIncident:
    """Locks by incident id; ``async with serial(incident_id):`` holds that incident's lock."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def __call__(self, incident_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(incident_id, (asyncio.Lock(), 0))
        self._locks[incident_id] = (lock, users + 1)
        try:
            async with lock:  # first come, first served
                yield
        finally:
            lock, users = self._locks[incident_id]
            if users <= 1:
                del self._locks[incident_id]
            else:
                self._locks[incident_id] = (lock, users - 1)
