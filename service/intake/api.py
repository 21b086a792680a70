"""The read API (``GET /v1/incidents``, ``GET /v1/incidents/{id}``), health, readiness and metrics."""

from __future__ import annotations

import asyncio
import math
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service import errors, keys
from service.escalation.render import report
from service.intake import auth, openapi, responses
from service.records import incidents as incident_rows
from service.records import outbox

STATES = ("open", "diagnosing", "remediating", "verifying", "mitigated", "escalated", "resolved")
MAX_LIMIT = 1000


def _reader_denied(request: web.Request) -> web.Response | None:
    settings = request.app[keys.SETTINGS]
    denial = auth.reader_denial(request, settings.webhook_token, settings.approver_tokens)
    return None if denial is None else auth.unauthorized(denial)


async def list_incidents(request: web.Request) -> web.Response:
    if (denied := _reader_denied(request)) is not None:
        return denied
    query = request.query
    state = query.get("state") or None
    if state is not None and state not in STATES:
        return responses.error(400, f"state must be one of {', '.join(STATES)}", field="state")
    limit = _limit(query.get("limit", "100"))
    if isinstance(limit, web.Response):
        return limit
    over = query.get("over_target")
    if over not in (None, "", "true", "false"):
        return responses.error(400, "over_target must be true or false", field="over_target")
    cursor = query.get("cursor") or None
    if cursor is not None and not _valid_cursor(cursor):
        return responses.error(400, "invalid cursor", field="cursor")
    try:
        page, next_cursor = await incident_rows.list_incidents(
            request.app[keys.STORE],
            state=state,
            rule=query.get("rule") or None,
            limit=limit,
            cursor=cursor,
            now=time.time(),
            over_target={"true": True, "false": False}.get(over or ""),
        )
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; retry later")
    body: dict[str, object] = {"incidents": page}
    if next_cursor:
        body["next"] = next_cursor
    return responses.json_response(body)


def _limit(text: str) -> int | web.Response:
    """The page size asked for, or the 400 that refuses it."""
    try:
        limit = int(text)
    except ValueError:
        return responses.error(400, "limit must be an integer", field="limit")
    if not 1 <= limit <= MAX_LIMIT:
        return responses.error(400, f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    return limit


def _valid_cursor(cursor: str) -> bool:
    try:
        opened_at, _ = incident_rows.decode_cursor(cursor)
    except ValueError:
        return False
    return math.isfinite(opened_at)


async def get_incident(request: web.Request) -> web.Response:
    if (denied := _reader_denied(request)) is not None:
        return denied
    incident_id = request.match_info["id"]
    store = request.app[keys.STORE]
    try:
        detail = await incident_rows.get_incident(store, incident_id, now=time.time())
        if detail is not None:
            detail["notifications"] = await outbox.for_incident(store, incident_id)
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; retry later")
    if detail is None:
        return responses.error(404, f"no incident {incident_id!r}", field="id")
    return responses.json_response(detail)


async def incident_report(request: web.Request) -> web.Response:
    """``GET /v1/incidents/{id}/report``: the Markdown incident report for a post-mortem."""
    if (denied := _reader_denied(request)) is not None:
        return denied
    incident_id = request.match_info["id"]
    store = request.app[keys.STORE]
    now = time.time()
    try:
        found = await incident_rows.incident_detail(store, incident_id, now=now)
        if found is not None:
            found[0]["notifications"] = await outbox.for_incident(store, incident_id)
    except errors.StoreUnavailable:
        return responses.error(503, "store unavailable; retry later")
    if found is None:
        return responses.error(404, f"no incident {incident_id!r}", field="id")
    detail, bundle = found
    rule = request.app[keys.RULES].by_name(detail["rule"])
    checklist = rule.rule.checklist.items() if rule else []
    text = report.render(detail, bundle, checklist=checklist, now=now)
    return web.Response(text=text, content_type="text/markdown", charset="utf-8")


async def healthz(_request: web.Request) -> web.Response:
    return responses.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the store answers: intake needs nothing else to accept alerts. Coordination (Redis) is
    checked and reported — body and ``remediator_dependency_up`` — but never takes intake off the Service:
    without it automatic actions are refused (``coordination_unavailable``) while alerts are still stored."""
    store_ok, shared_ok = await asyncio.gather(
        request.app[keys.STORE].ping(), request.app[keys.COORDINATION].ping()
    )
    gauge = request.app[keys.METRICS].dependency_up
    gauge.labels(dependency="store").set(1 if store_ok else 0)
    gauge.labels(dependency="coordination").set(1 if shared_ok else 0)
    checks = {
        "store": "ok" if store_ok else "unavailable",
        "coordination": "ok" if shared_ok else "unavailable",
    }
    # flat keys as the OpenAPI document states them; ``ready`` and ``checks`` as answered before
    body = {"status": checks["store"], **checks, "ready": store_ok, "checks": checks}
    return responses.json_response(body, status=200 if store_ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Serializes the registry: the store-derived gauges are counted off the request path
    (``intake.gauges``), so a scrape — open to anyone — costs the store nothing."""
    body = generate_latest(request.app[keys.METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_document(_request: web.Request) -> web.Response:
    return responses.json_response(openapi.DOCUMENT)
