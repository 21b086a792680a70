"""The post-incident checklist: a human ticks an item, in any state (most are done after resolution)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.lifecycle.core import (
    UNRESOLVED,
    Core,
    _changed,
    _stored,
)
from service.model.rules import ChecklistItem
from service.records import incidents as incident_rows
from service.records.incidents import IncidentRow
from service.records.sqlite_inline import Conn


class Checklist(Core):
    """The post-incident checklist: a human ticks an item, in any state (most are done after resolution)."""

    async def tick(
        self, conn: Conn, incident: dict[str, Any], item: ChecklistItem, *, by: str, now: float
    ) -> IncidentRow | None:
        """A human ticked a post-incident checklist item (in any state: most are done after resolution).
        None when it was ticked already (the first tick stands)."""
        if item.id in await incident_rows.ticks_of(conn, incident["id"]):
            return None
        stored = incident_rows.load_bundle(incident["bundle"])
        if stored is not None:
            at = datetime.fromtimestamp(now, UTC)
            entries = [
                e.model_copy(update={"ticked_by": by, "ticked_at": at}) if e.id == item.id else e
                for e in stored.checklist
            ]
            stored = _changed(stored, checklist=entries)
        return await self._move(
            conn,
            incident["id"],
            now=now,
            from_states=UNRESOLVED | {"resolved"},
            values=_stored(stored),
            event=(
                "checklist.ticked",
                f"checklist: {item.text!r} done ({item.band.replace('_', '-')}), ticked by {by}",
                {"item": item.id, "band": item.band, "by": by},
            ),
        )
