"""``POST /v1/incidents/{id}/checklist/{item}``: a human ticks a post-incident checklist item.

Approver token only (the webhook token is 403, as for every human control); the approver's name and the time
go to the incident's timeline (``checklist.ticked``) and its stored bundle. ``item`` is the item's id
(``root-cause-identified``) or its number in the runbook's order (1–12). An unknown incident or item is 404;
an item ticked before is 409 naming who ticked it and when (the first tick stands). Ticking is allowed in
every state, resolved included: most of the checklist is done after the incident.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from service import errors, keys
from service.intake import control, responses
from service.matching.loader import RuleSet
from service.model import rules
from service.records import incidents as incident_rows
from service.records.store import iso


def items_of(incident: dict[str, Any], ruleset: RuleSet) -> list[rules.ChecklistItem]:
    """The incident's checklist: its rule's (when loaded), else its bundle's, else the default."""
    rule = ruleset.by_name(incident["rule"])
    if rule is not None:
        return rule.rule.checklist.items()
    stored = incident_rows.load_bundle(incident["bundle"])
    if stored is not None and stored.checklist:
        return [rules.ChecklistItem(id=e.id, band=e.band, text=e.text) for e in stored.checklist]
    return rules.DEFAULT_CHECKLIST.items()


def find(items: Sequence[rules.ChecklistItem], wanted: str) -> rules.ChecklistItem | None:
    """The item named by id, or by its 1-based number."""
    for item in items:
        if item.id == wanted:
            return item
    if wanted.isdigit() and 1 <= int(wanted) <= len(items):
        return items[int(wanted) - 1]
    return None


async def tick(request: web.Request) -> web.Response:
    who = control.approver(request)
    if isinstance(who, web.Response):
        return who
    incident_id, wanted = request.match_info["id"], request.match_info["item"]
    app = request.app
    try:
        async with app[keys.STORE].write() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            if incident is None:
                return responses.error(404, f"no incident {incident_id!r}", field="id")
            item = find(items_of(incident, app[keys.RULES]), wanted)
            if item is None:
                return responses.error(
                    404, f"incident {incident_id} has no checklist item {wanted[:80]!r}", field="item"
                )
            now = time.time()
            if await app[keys.LIFECYCLE].tick(conn, incident, item, by=who, now=now) is None:
                first = (await incident_rows.ticks_of(conn, incident_id)).get(item.id, {})
                return responses.error(
                    409,
                    f"{item.text!r} was already ticked by {first.get('by')} at {iso(first.get('at'))}",
                    field="item",
                )
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; retry later")
    body = {"id": incident_id, "item": item.id, "band": item.band, "text": item.text, "ticked_by": who}
    return responses.json_response({**body, "ticked_at": iso(now)})
