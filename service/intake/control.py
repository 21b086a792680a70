"""Human control: approve or reject a proposed action, and the kill switch (``/v1/pause``, ``/v1/resume``).

Every endpoint here takes an approver token (``REMEDIATOR_APPROVER_TOKENS``); the approver's name is written
to the journal and the timeline. The webhook token is known but not allowed here (403).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
import structlog
from aiohttp import web

from service import errors, keys
from service.intake import auth, responses
from service.records import actions as journal
from service.records import incidents as incident_rows
from service.records import schema, switches
from service.records.coordination import CoordinationUnavailable

log = structlog.get_logger(__name__)


def approver(request: web.Request) -> str | web.Response:
    settings = request.app[keys.SETTINGS]
    given = auth.presented_secret(request)
    if given is None:
        return auth.unauthorized(auth.MISSING)
    name = auth.approver_name(given, settings.approver_tokens)
    if name is not None:
        return name
    token = settings.webhook_token
    if token is not None and auth.approver_name(given, {"webhook": token}) is not None:
        return responses.error(
            403, "the webhook token cannot approve, acknowledge or pause; use an approver token"
        )
    return auth.unauthorized(auth.INVALID)


async def pause(request: web.Request) -> web.Response:
    return await _switch(request, paused=True)


async def resume(request: web.Request) -> web.Response:
    return await _switch(request, paused=False)


async def _switch(request: web.Request, *, paused: bool) -> web.Response:
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    now = time.time()
    try:
        await switches.set_paused(request.app[keys.STORE], paused, by=who, now=now)  # survives restarts
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; the switch was not changed")
    try:
        await request.app[keys.COORDINATION].set_paused(
            paused, by=who, now=now
        )  # seen by every replica at once
    except CoordinationUnavailable:
        log.warning(
            "automation.switch_not_shared", paused=paused
        )  # automation fails closed without it anyway
    log.warning("automation.paused" if paused else "automation.resumed", by=who)
    return responses.json_response({"paused": paused, "by": who})


async def acknowledge(request: web.Request) -> web.Response:
    """``POST /v1/incidents/{id}/ack``: stop the escalation timers; 409 when resolved or acknowledged."""
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    incident_id = request.match_info["id"]
    app = request.app
    try:
        async with app[keys.STORE].write() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            if incident is None:
                return responses.error(404, f"no incident {incident_id!r}", field="id")
            if incident["resolved_at"] is not None or incident["acked_at"] is not None:
                state = (
                    "resolved"
                    if incident["resolved_at"] is not None
                    else f"acknowledged by {incident['acked_by']}"
                )
                return responses.error(409, f"incident {incident_id} is already {state}", field="id")
            await app[keys.LIFECYCLE].acknowledge(conn, incident, by=who, now=time.time())
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; retry later")
    app[keys.OUTBOX].wake()
    return responses.json_response({"id": incident_id, "acknowledged_by": who})


async def decide_action(request: web.Request) -> web.Response:
    who = approver(request)
    if isinstance(who, web.Response):
        return who
    incident_id, action_id = request.match_info["id"], request.match_info["action"]
    verb = request.match_info["verb"]
    app = request.app
    store = app[keys.STORE]
    now = time.time()
    try:
        async with store.write() as conn:
            record = await journal.get(conn, incident_id, action_id)
            if record is None:
                return responses.error(
                    404, f"no action {action_id!r} on incident {incident_id!r}", field="action"
                )
            if record["status"] != "awaiting_approval":
                return responses.error(
                    409, f"action {action_id} is already {record['status']}", field="action"
                )
            if verb == "approve":
                incident = await incident_rows.get_row(conn, incident_id)
                if incident is None or incident["resolved_at"] is not None:
                    return responses.error(
                        409,
                        f"incident {incident_id} is resolved: its proposals can no longer be approved",
                        field="id",
                    )
            new_status = "approved" if verb == "approve" else "rejected"
            A = schema.actions
            changed = await conn.execute(
                sa.update(A)
                .where(A.c.id == action_id, A.c.status == "awaiting_approval")
                .values(status=new_status, approver=who)
            )
            if not changed.rowcount:
                return responses.error(409, f"action {action_id} was decided meanwhile", field="action")
            await app[keys.LIFECYCLE].note(
                conn,
                incident_id,
                "action.approved" if verb == "approve" else "action.rejected",
                f"{record['action']} {new_status} by {who}",
                now=now,
                data={"action_id": action_id, "approver": who},
            )
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; retry later")
    if verb == "reject":
        async with store.read() as conn:
            return responses.json_response(await journal.get(conn, incident_id, action_id))
    status = await app[keys.PIPELINE].run_approved(incident_id, record, who)
    async with store.read() as conn:
        result = await journal.get(conn, incident_id, action_id)
    return responses.json_response(result, status=200 if status in ("succeeded", "skipped") else 409)
