"""The console's pages (GET): sign-in, the incident list, the incident page, their live fragments and
versions, the Markdown report, and the static files.

Every value shown comes from the store through an autoescaped template; links are our own ``/ui`` URLs and
the bundle's ``links`` (judged safe when the bundle was built). Reads only: what a button does is ``forms``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from service import keys
from service.console import csrf, guard, queries, sessions
from service.console.state import CONSOLE, STATIC_TYPES
from service.escalation.render import report
from service.intake import checklist
from service.model import rules
from service.records import comms as comms_rows
from service.records import incidents as incident_rows
from service.records import outbox, switches, windows
from service.records.store import iso

STATES = ("open", "diagnosing", "remediating", "verifying", "mitigated", "escalated", "resolved")
PAGE = 50
MAX_PAGE = 500


def html(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A rendered page; the flash message it showed is forgotten."""
    console = request.app[CONSOLE]
    text = console.render(template, **context)
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    sessions.forget_flash(response, request)
    return response


async def banner(request: web.Request) -> dict[str, Any]:
    """The kill switch and the maintenance windows in force, shown on every page."""
    store = request.app[keys.STORE]
    active = await windows.active(store, time.time())
    return {"paused": await switches.paused(store), "windows": [w.public() for w in active]}


def page_of(request: web.Request) -> str:
    """The page a request belongs to (a fragment's page): where a button on it goes back to."""
    path = request.path
    if path == "/ui/fragment":
        return "/ui/" + (f"?{request.query_string}" if request.query_string else "")
    return path.removesuffix("/fragment") if path.endswith("/fragment") else request.path_qs


def common(request: web.Request, session: sessions.Session) -> dict[str, Any]:
    console = request.app[CONSOLE]
    return {
        "session": session,
        "csrf": csrf.token(session, console.secret),
        "flash": sessions.read_flash(request, console.secret),
        "back": page_of(request),
    }


# ----------------------------------------------------------------------------------------------- sign-in


async def to_list(_request: web.Request) -> web.Response:
    return guard.redirect("/ui/")


async def login_form(request: web.Request) -> web.Response:
    return html(request, "login.html", error=None, session=None, banner=None)


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    files = request.app[CONSOLE].static
    if name not in files:
        raise web.HTTPNotFound()
    return web.Response(body=files[name], content_type=STATIC_TYPES[name], charset="utf-8")


# ----------------------------------------------------------------------------------------- incident list


def filters(request: web.Request) -> dict[str, Any]:
    """The list's filters from the query, each checked (an unknown state or rule filters nothing)."""
    query = request.query
    names = {r.rule.name for r in request.app[keys.RULES].rules}
    state = query.get("state", "")
    rule = query.get("rule", "")
    cursor = query.get("cursor", "")
    try:
        incident_rows.decode_cursor(cursor) if cursor else None
    except ValueError:
        cursor = ""
    limit = query.get("limit", "")
    return {
        "limit": int(limit) if limit.isdigit() and 1 <= int(limit) <= MAX_PAGE else PAGE,
        "state": state if state in STATES else "",
        "rule": rule if rule in names else "",
        "over": query.get("over") == "1",
        "cursor": cursor,
        "rules": sorted(names),
        "states": STATES,
    }


async def list_context(request: web.Request) -> dict[str, Any]:
    chosen = filters(request)
    store = request.app[keys.STORE]
    page, next_cursor = await incident_rows.list_incidents(
        store,
        state=chosen["state"] or None,
        rule=chosen["rule"] or None,
        limit=chosen["limit"],
        cursor=chosen["cursor"] or None,
        now=time.time(),
        over_target=True if chosen["over"] else None,
    )
    linked = await queries.effects(store, [i["id"] for i in page])
    kept = {k: v for k, v in (("state", chosen["state"]), ("rule", chosen["rule"])) if v}
    if chosen["over"]:
        kept["over"] = "1"
    if chosen["limit"] != PAGE:
        kept["limit"] = str(chosen["limit"])
    return {
        "incidents": [{**i, "effects": linked.get(i["id"], [])} for i in page],
        "filters": chosen,
        "next": f"/ui/?{urlencode({**kept, 'cursor': next_cursor})}" if next_cursor else None,
        "first": f"/ui/?{urlencode(kept)}" if chosen["cursor"] else None,
        "query": urlencode({**kept, **({"cursor": chosen["cursor"]} if chosen["cursor"] else {})}),
        "banner": await banner(request),
    }


@guard.page
async def incident_list(request: web.Request, session: sessions.Session) -> web.Response:
    return html(request, "list.html", **common(request, session), **(await list_context(request)))


@guard.live
async def list_fragment(request: web.Request, session: sessions.Session) -> web.Response:
    return html(request, "list_live.html", **common(request, session), **(await list_context(request)))


@guard.live
async def list_version(request: web.Request, session: sessions.Session) -> web.Response:
    return web.json_response({"version": await queries.list_version(request.app[keys.STORE])})


# ------------------------------------------------------------------------------------------ incident page


def _checklist(items: list[rules.ChecklistItem], ticks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The checklist by band, each item with who ticked it and when (or not ticked)."""
    bands = []
    for band in rules.BANDS:
        entries = [
            {
                "id": i.id,
                "text": i.text,
                "by": ticks.get(i.id, {}).get("by"),
                "at": ticks.get(i.id, {}).get("at"),
            }
            for i in items
            if i.band == band
        ]
        if entries:
            bands.append({"title": rules.BAND_TITLES[band], "items": entries})
    return bands


def _links(bundle: Any) -> dict[str, str]:
    """The bundle's links (judged when it was built) but its own incident link; http(s) only, again."""
    links = bundle.links if bundle is not None else {}
    return {k: v for k, v in links.items() if k != "incident" and v.startswith(("https://", "http://"))}


async def incident_context(request: web.Request, incident_id: str) -> dict[str, Any] | None:
    """Everything the incident page shows; None when there is no such incident."""
    store, now = request.app[keys.STORE], time.time()
    found = await incident_rows.incident_detail(store, incident_id, now=now)
    if found is None:
        return None
    detail, bundle = found
    detail["notifications"] = await outbox.for_incident(store, incident_id)
    async with store.read() as conn:
        row = await incident_rows.get_row(conn, incident_id)
        ticks = await incident_rows.ticks_of(conn, incident_id)
        effects = await incident_rows.effects_of(conn, incident_id)
        drafts = [d.public() for d in await comms_rows.of_incident(conn, incident_id)]
    items = checklist.items_of(row or {"rule": detail["rule"], "bundle": None}, request.app[keys.RULES])
    for tick in ticks.values():
        tick["at"] = iso(tick["at"])
    return {
        "incident": detail,
        "bundle": bundle,
        "effects": [e["id"] for e in effects],
        "checklist": _checklist(items, ticks),
        "comms": drafts,
        "history": await queries.history(store, detail),
        "report": report.render(detail, bundle, checklist=items, now=now),
        "links": _links(bundle),
        "open": detail["state"] != "resolved",
        "banner": await banner(request),
    }


async def _incident(request: web.Request, session: sessions.Session, template: str) -> web.Response:
    incident_id = request.match_info["id"]
    context = await incident_context(request, incident_id)
    if context is None:
        return guard.error_page(request, 404, f"no incident {incident_id!r}")
    return html(request, template, **common(request, session), **context)


@guard.page
async def incident_page(request: web.Request, session: sessions.Session) -> web.Response:
    return await _incident(request, session, "incident.html")


@guard.live
async def incident_fragment(request: web.Request, session: sessions.Session) -> web.Response:
    return await _incident(request, session, "incident_live.html")


@guard.live
async def incident_version(request: web.Request, session: sessions.Session) -> web.Response:
    version = await queries.incident_version(request.app[keys.STORE], request.match_info["id"])
    if version is None:
        return web.json_response({"error": "no such incident"}, status=404)
    return web.json_response({"version": version})


@guard.page
async def report_markdown(request: web.Request, session: sessions.Session) -> web.Response:
    """The Markdown report, downloaded as ``<incident id>.md``."""
    incident_id = request.match_info["id"]
    context = await incident_context(request, incident_id)
    if context is None:
        return guard.error_page(request, 404, f"no incident {incident_id!r}")
    response = web.Response(text=context["report"], content_type="text/markdown", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="incident-{incident_id}.md"'
    return response
