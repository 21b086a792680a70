"""What a human decides, whichever door it came through — the JSON API, the console, a Slack button, the CLI:
approve or reject a proposal, acknowledge, tick a checklist item, pause or resume automation (everywhere, or
for one namespace, rule or target until a time: a maintenance window).

Each function takes the application and the person (an approver's name, already authenticated by the
caller), writes through the lifecycle and the journal exactly as the API always did, and returns an
``Outcome``: the HTTP status the API answers, a sentence a human reads, the field at fault, and the body.
Callers only translate it (JSON, an HTML flash message, a Slack reply). Approving records the decision and
then runs the action through the pipeline's approved path; ``run_approved`` is separate so that Slack can
answer within its 3 seconds and run the action in the background.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
import structlog
from aiohttp import web

from service import errors, keys
from service.comms import drafts
from service.comms import publish as comms_publish
from service.intake import checklist
from service.model.rules import parse_duration
from service.records import actions as journal
from service.records import comms as comms_rows
from service.records import incidents as incident_rows
from service.records import schema, switches, windows
from service.records.coordination import CoordinationUnavailable
from service.records.store import iso

log = structlog.get_logger(__name__)

Verb = Literal["approve", "reject"]


@dataclass(frozen=True)
class Outcome:
    """How a human decision went: ``status`` as the API answers it (200 done, 404, 409, 503)."""

    status: int
    message: str
    where: str | None = None  # the request field at fault (the API's ``field``)
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _unavailable() -> Outcome:
    return Outcome(503, "store unavailable; retry later")


async def record_decision(
    app: web.Application, incident_id: str, action_id: str, verb: Verb, who: str
) -> Outcome:
    """Approve or reject a proposal in the journal (compare-and-set on ``awaiting_approval``) and note it in
    the timeline; the action does not run here (``run_approved``). 409 names who decided before."""
    try:
        async with app[keys.STORE].write() as conn:
            record = await journal.get(conn, incident_id, action_id)
            if record is None:
                return Outcome(404, f"no action {action_id!r} on incident {incident_id!r}", "action")
            if record["status"] != "awaiting_approval":
                by = f" by {record['approver']}" if record.get("approver") else ""
                return Outcome(409, f"action {action_id} is already {record['status']}{by}", "action", record)
            if verb == "approve":
                incident = await incident_rows.get_row(conn, incident_id)
                if incident is None or incident["resolved_at"] is not None:
                    message = f"incident {incident_id} is resolved: its proposals can no longer be approved"
                    return Outcome(409, message, "id")
            new_status = "approved" if verb == "approve" else "rejected"
            A = schema.actions
            changed = await conn.execute(
                sa.update(A)
                .where(A.c.id == action_id, A.c.status == "awaiting_approval")
                .values(status=new_status, approver=who)
            )
            if not changed.rowcount:
                return Outcome(409, f"action {action_id} was decided meanwhile", "action")
            await app[keys.LIFECYCLE].note(
                conn,
                incident_id,
                "action.approved" if verb == "approve" else "action.rejected",
                f"{record['action']} {new_status} by {who}",
                now=time.time(),
                data={"action_id": action_id, "approver": who},
            )
            decided = await journal.get(conn, incident_id, action_id)
    except errors.StoreUnavailable:
        return _unavailable()
    return Outcome(200, f"{record['action']} {new_status} by {who}", body=decided or record)


async def run_approved(app: web.Application, incident_id: str, record: dict[str, Any], who: str) -> Outcome:
    """Run an approved proposal through the pipeline's approved path (guards, lock, journal, verify)."""
    status = await app[keys.PIPELINE].run_approved(incident_id, record, who)
    async with app[keys.STORE].read() as conn:
        result = await journal.get(conn, incident_id, record["id"]) or record
    done = status in ("succeeded", "skipped")
    reason = f": {result.get('reason')}" if result.get("reason") and not done else ""
    return Outcome(200 if done else 409, f"{record['action']} {status}{reason}", body=result)


async def decide(app: web.Application, incident_id: str, action_id: str, verb: Verb, who: str) -> Outcome:
    """Record the decision, and for an approval run the action now; the outcome of the run."""
    decided = await record_decision(app, incident_id, action_id, verb, who)
    if not decided.ok or verb == "reject":
        return decided
    return await run_approved(app, incident_id, decided.body, who)


async def acknowledge(app: web.Application, incident_id: str, who: str) -> Outcome:
    """Stop the escalation timers (PagerDuty is acknowledged); 409 when resolved or acknowledged before."""
    try:
        async with app[keys.STORE].write() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            if incident is None:
                return Outcome(404, f"no incident {incident_id!r}", "id")
            if incident["resolved_at"] is not None or incident["acked_at"] is not None:
                state = (
                    "resolved"
                    if incident["resolved_at"] is not None
                    else f"acknowledged by {incident['acked_by']}"
                )
                return Outcome(409, f"incident {incident_id} is already {state}", "id")
            await app[keys.LIFECYCLE].acknowledge(conn, incident, by=who, now=time.time())
    except errors.StoreUnavailable:
        return _unavailable()
    app[keys.OUTBOX].wake()
    return Outcome(200, f"acknowledged by {who}", body={"id": incident_id, "acknowledged_by": who})


async def tick(app: web.Application, incident_id: str, wanted: str, who: str) -> Outcome:
    """Tick a post-incident checklist item (by id or number); 409 when ticked before, naming who and when."""
    try:
        async with app[keys.STORE].write() as conn:
            incident = await incident_rows.get_row(conn, incident_id)
            if incident is None:
                return Outcome(404, f"no incident {incident_id!r}", "id")
            item = checklist.find(checklist.items_of(incident, app[keys.RULES]), wanted)
            if item is None:
                return Outcome(404, f"incident {incident_id} has no checklist item {wanted[:80]!r}", "item")
            now = time.time()
            if await app[keys.LIFECYCLE].tick(conn, incident, item, by=who, now=now) is None:
                first = (await incident_rows.ticks_of(conn, incident_id)).get(item.id, {})
                message = f"{item.text!r} was already ticked by {first.get('by')} at {iso(first.get('at'))}"
                return Outcome(409, message, "item")
    except errors.StoreUnavailable:
        return _unavailable()
    body = {"id": incident_id, "item": item.id, "band": item.band, "text": item.text, "ticked_by": who}
    return Outcome(200, f"{item.text!r} ticked by {who}", body={**body, "ticked_at": iso(now)})


async def switch(app: web.Application, *, paused: bool, who: str) -> Outcome:
    """The kill switch for every automatic action: kept in the store (survives restarts), shared through
    the coordination backend (every replica sees it at once)."""
    now = time.time()
    try:
        await switches.set_paused(app[keys.STORE], paused, by=who, now=now)
    except errors.StoreUnavailable:
        return Outcome(503, "store unavailable; the switch was not changed")
    try:
        await app[keys.COORDINATION].set_paused(paused, by=who, now=now)
    except CoordinationUnavailable:
        log.warning("automation.switch_not_shared", paused=paused)  # automation fails closed without it
    log.warning("automation.paused" if paused else "automation.resumed", by=who)
    app[keys.METRICS].kill_switch.set(1 if paused else 0)  # the refresher also reads it (other replicas)
    return Outcome(
        200, f"automation {'paused' if paused else 'resumed'} by {who}", body={"paused": paused, "by": who}
    )


#: the longest maintenance window: a forgotten one must not switch automation off for good
MAX_WINDOW_S = 7 * 24 * 3600.0


def window_until(text: str, *, now: float) -> float:
    """``until`` of a maintenance window: an RFC 3339 time or a duration from now (``2h``, ``90m``); raises
    ValueError unless it is in the future and at most 7 days ahead."""
    text = text.strip()
    try:
        until = now + parse_duration(text).total_seconds()
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("until must be an RFC 3339 time or a duration such as 2h or 90m") from None
        if moment.tzinfo is None:
            raise ValueError("until must carry a time zone (e.g. 2026-12-06T18:00:00Z)") from None
        until = moment.timestamp()
    if until <= now:
        raise ValueError("until must be in the future")
    if until - now > MAX_WINDOW_S:
        raise ValueError("a maintenance window lasts at most 7 days")
    return until


async def open_window(app: web.Application, *, scope: str, until: str, reason: str, who: str) -> Outcome:
    """Pause automation for one namespace, rule or target until a time (every replica sees it: the store)."""
    now = time.time()
    try:
        kind, value = windows.parse_scope(scope)
    except ValueError as exc:
        return Outcome(400, str(exc), "scope")
    try:
        end = window_until(until, now=now)
    except ValueError as exc:
        return Outcome(400, str(exc), "until")
    try:
        window = await windows.open_window(
            app[keys.STORE], kind=kind, value=value, until=end, by=who, reason=reason, now=now
        )
    except errors.StoreUnavailable:
        return _unavailable()
    log.warning("automation.window_opened", scope=window.scope, until=end, by=who)
    return Outcome(200, window.sentence(), body={"window": window.public()})


async def end_window(app: web.Application, window_id: str, who: str) -> Outcome:
    """End a maintenance window early; 404 when there is no such window still in force."""
    try:
        ended = await windows.end_window(app[keys.STORE], window_id, by=who, now=time.time())
    except errors.StoreUnavailable:
        return _unavailable()
    if ended is None:
        return Outcome(404, f"no maintenance window {window_id[:40]!r} in force", "window")
    log.warning("automation.window_ended", scope=ended.scope, by=who)
    return Outcome(
        200, f"maintenance window on {ended.scope} ended by {who}", body={"window": ended.public()}
    )


async def automation_state(app: web.Application) -> dict[str, Any]:
    """The kill switch and the maintenance windows in force, as the API and the console show them."""
    store = app[keys.STORE]
    state = await switches.state(store)
    return {**state, "windows": [w.public() for w in await windows.active(store, time.time())]}


#: who publishes what ``REMEDIATOR_STATUSPAGE_AUTO`` sends without a click (the timeline says so)
AUTO = "auto"


async def publish(app: web.Application, incident_id: str, kind: str, step: str, who: str) -> Outcome:
    """Publish a customer-facing draft once: claim it (compare-and-set ``draft → publishing``), send it
    (Statuspage: open the page's incident the first time, then update it; email: one message), then mark
    it published, note who in the timeline and tick its checklist item ("Status page updated",
    "Stakeholders notified"). 409 when it was published before (naming who and when), a drill, or another
    status-page step is going out; 502 when sending failed (the draft stays a draft)."""
    lifecycle, clock = app[keys.LIFECYCLE], app[keys.CLOCK]
    try:
        async with app[keys.STORE].write() as conn:
            claimed = await _claim_draft(conn, app, incident_id, kind, step, who)
    except errors.StoreUnavailable:
        return _unavailable()
    if isinstance(claimed, Outcome):
        return claimed
    row, severity_, previous = claimed
    failure: errors.RemediatorError | None = None
    try:
        external = await comms_publish.deliver(
            app[keys.SETTINGS], drafts.parse(kind, step, row.text), severity=severity_, previous=previous
        )
    except errors.RemediatorError as exc:
        failure, external = exc, None
    try:
        async with app[keys.STORE].write() as conn:
            now = clock()
            if failure is not None:
                await lifecycle.comms_released(conn, row, reason=str(failure), by=who, now=now)
                return Outcome(502, f"{kind} {step} not published: {failure}", "step")
            await lifecycle.comms_published(conn, row, external_id=external, by=who, now=now)
            await _tick_for(conn, app, incident_id, kind, who, now)
            done = await comms_rows.get(conn, incident_id, kind, step)
    except errors.StoreUnavailable:
        log.error("comms.published_unrecorded", incident=incident_id, kind=kind, step=step)
        return Outcome(503, f"{kind} {step} was sent but could not be recorded; it will not be sent again")
    log.info("comms.published", incident=incident_id, kind=kind, step=step, by=who)
    body = done.public() if done is not None else {}
    return Outcome(200, f"{kind} {step} published by {who}", body={"id": incident_id, **body})


async def _claim_draft(
    conn: Any, app: web.Application, incident_id: str, kind: str, step: str, who: str
) -> Outcome | tuple[comms_rows.Row, str, str | None]:
    """The draft claimed for ``who``, the incident's severity and its Statuspage incident id; or why not."""
    incident = await incident_rows.get_row(conn, incident_id)
    if incident is None:
        return Outcome(404, f"no incident {incident_id!r}", "id")
    if incident.get("drill"):
        return Outcome(409, f"incident {incident_id} is a drill: drills never publish", "id")
    row = await comms_rows.get(conn, incident_id, kind, step)
    if row is None:
        message = f"incident {incident_id} has no {kind[:20]!r} draft for step {step[:20]!r}"
        return Outcome(404, message, "step")
    if row.state == comms_rows.PUBLISHED:
        message = f"{kind} {step} already published by {row.published_by} at {iso(row.published_at)}"
        return Outcome(409, message, "step")
    if row.state == comms_rows.PUBLISHING or await comms_rows.busy(conn, incident_id, kind):
        message = f"a {kind} update of incident {incident_id} is being published; retry later"
        return Outcome(409, message, "step")
    if not await app[keys.LIFECYCLE].comms_claim(conn, row, by=who, now=app[keys.CLOCK]()):
        return Outcome(409, f"{kind} {step} was published meanwhile", "step")
    previous = await comms_rows.external_id(conn, incident_id, kind) if kind == "statuspage" else None
    return row, str(incident["severity"]), previous


async def _tick_for(
    conn: Any, app: web.Application, incident_id: str, kind: str, who: str, now: float
) -> None:
    """Tick the checklist item a published ``kind`` stands for (once: a later step changes nothing)."""
    incident = await incident_rows.get_row(conn, incident_id)
    wanted = drafts.CHECKLIST_ITEMS.get(kind)
    if incident is None or wanted is None:
        return
    item = checklist.find(checklist.items_of(incident, app[keys.RULES]), wanted)
    if item is not None:
        await app[keys.LIFECYCLE].tick(conn, incident, item, by=who, now=now)


def auto_publisher(app: web.Application) -> Callable[[str, str, str], Awaitable[Outcome]]:
    """What the timers call for ``REMEDIATOR_STATUSPAGE_AUTO``: ``publish`` by ``AUTO``."""

    async def publish_auto(incident_id: str, kind: str, step: str) -> Outcome:
        outcome = await publish(app, incident_id, kind, step, AUTO)
        if not outcome.ok:
            log.warning("comms.auto_publish_failed", incident=incident_id, step=step, reason=outcome.message)
        return outcome

    return publish_auto
