"""The console's forms (POST): sign in and out, and the buttons — approve or reject a proposal, acknowledge,
tick a checklist item, pause or resume automation — each through ``intake.humans``, the one path every human
decision takes.

A button answers 303 back to the page it was on, with what happened in the flash cookie; the page's script
posts the same form with ``Accept: application/json`` and gets ``{"ok", "message"}`` instead, so the page
never reloads. An approval is recorded at once and the action then runs in the background (as Slack's
buttons do), so the answer is immediate and the page shows the run live.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from service import keys
from service.console import csrf, guard, sessions
from service.console.state import CONSOLE
from service.intake import auth, humans
from service.intake.humans import Outcome

log = structlog.get_logger(__name__)


def back_to(value: object, default: str) -> str:
    """Where to go back to: one of our own ``/ui`` pages, never another site."""
    if not isinstance(value, str) or not value.startswith("/ui") or "\\" in value or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not guard.is_console(parts.path):
        return default
    return value


async def answer(request: web.Request, outcome: Outcome) -> web.Response:
    """The script gets JSON; a plain form post goes back to its page with the flash message."""
    if "application/json" in request.headers.get("Accept", ""):
        body = {"ok": outcome.ok, "status": outcome.status, "message": outcome.message}
        return web.json_response(body, status=200 if outcome.ok else outcome.status)
    fields = await request.post()
    default = f"/ui/incidents/{request.match_info['id']}" if "id" in request.match_info else "/ui/"
    response = guard.redirect(back_to(fields.get("back"), default))
    sessions.set_flash(response, request, outcome.message, outcome.ok, request.app[CONSOLE].secret)
    return response


# ----------------------------------------------------------------------------------------- sign in / out


def _who(request: web.Request, token: str) -> tuple[str, sessions.Role] | None:
    settings = request.app[keys.SETTINGS]
    name = auth.approver_name(token, settings.approver_tokens)
    if name is not None:
        return name, "approver"
    webhook = settings.webhook_token
    if webhook is not None and auth.approver_name(token, {"reader": webhook}) is not None:
        return "reader", "reader"
    return None


def _same_origin(request: web.Request) -> bool:
    """A browser's sign-in post comes from our own page (no sign-in forged from another site): browsers
    say where a request comes from in ``Sec-Fetch-Site``; else ``Origin`` (``null`` under our
    ``Referrer-Policy: no-referrer``); a client that sends neither is not a browser."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin in (None, "null") or urlsplit(origin).netloc == request.host


async def login(request: web.Request) -> web.Response:
    """``POST /ui/login``: an approver token or the webhook token becomes a session; else the form, 401."""
    console = request.app[CONSOLE]
    fields = await request.post()
    token = fields.get("token")
    who = _who(request, token.strip()) if isinstance(token, str) and token.strip() else None
    if who is None or not _same_origin(request):
        log.info("console.sign_in_refused")
        text = console.render("login.html", error="that token is not valid here", session=None, banner=None)
        return web.Response(text=text, status=401, content_type="text/html", charset="utf-8")
    now = time.time()
    session = sessions.new(who[0], who[1], now=now, ttl_s=console.ttl_s)
    log.info("console.signed_in", who=session.name, role=session.role)
    response = guard.redirect("/ui/")
    sessions.set_cookie(response, request, session, console.secret, now=now)
    return response


async def logout(request: web.Request) -> web.Response:
    """``POST /ui/logout``: the browser forgets the session (with the form's CSRF token)."""
    session = guard.session_of(request)
    fields = await request.post()
    given = fields.get(csrf.FIELD)
    if session is not None and not csrf.valid(
        session, request.app[CONSOLE].secret, given if isinstance(given, str) else None
    ):
        return guard.error_page(
            request, 403, "this form is not from your session (CSRF token missing or wrong)"
        )
    response = guard.redirect(guard.LOGIN)
    sessions.clear_cookie(response, request)
    return response


# ------------------------------------------------------------------------------------------------ buttons


@guard.form
async def decide(request: web.Request, session: sessions.Session) -> web.Response:
    """Approve (recorded now, run in the background) or reject a proposal."""
    app, incident_id = request.app, request.match_info["id"]
    verb: humans.Verb = "approve" if request.match_info["verb"] == "approve" else "reject"
    outcome = await humans.record_decision(app, incident_id, request.match_info["action"], verb, session.name)
    if outcome.ok and verb == "approve":
        app[CONSOLE].spawn(_run(app, incident_id, outcome, session.name))
        outcome = Outcome(200, f"{outcome.message}; running now", body=outcome.body)
    return await answer(request, outcome)


async def _run(app: web.Application, incident_id: str, decided: Outcome, who: str) -> None:
    try:
        ran = await humans.run_approved(app, incident_id, decided.body, who)
    except Exception:  # the journal and the timeline say what happened; the log says why
        log.exception("console.approved_run_failed", incident=incident_id, action=decided.body.get("id"))
        return
    log.info("console.approved_ran", incident=incident_id, outcome=ran.message)


@guard.form
async def acknowledge(request: web.Request, session: sessions.Session) -> web.Response:
    return await answer(
        request, await humans.acknowledge(request.app, request.match_info["id"], session.name)
    )


@guard.form
async def tick(request: web.Request, session: sessions.Session) -> web.Response:
    outcome = await humans.tick(
        request.app, request.match_info["id"], request.match_info["item"], session.name
    )
    return await answer(request, outcome)


@guard.form
async def pause(request: web.Request, session: sessions.Session) -> web.Response:
    return await answer(request, await humans.switch(request.app, paused=True, who=session.name))


@guard.form
async def resume(request: web.Request, session: sessions.Session) -> web.Response:
    return await answer(request, await humans.switch(request.app, paused=False, who=session.name))


@guard.form
async def publish(request: web.Request, session: sessions.Session) -> web.Response:
    """Publish a customer-facing draft (status page or email) once, through ``humans.publish``."""
    info = request.match_info
    outcome = await humans.publish(request.app, info["id"], info["kind"], info["step"], session.name)
    return await answer(request, outcome)
