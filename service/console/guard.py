"""The console's gate: the security headers on every ``/ui`` response, sign-in required for every page, and
for every form a session, its CSRF token and the approver role — checked in that order before a handler runs.

Pages without a valid session redirect to the sign-in page; the live endpoints answer 401 (the script then
goes to the sign-in page); a POST without a session, with a missing or wrong CSRF token, or from a read-only
session is refused with 403 and nothing is decided.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from service import errors
from service.console import csrf, sessions
from service.console.state import CONSOLE

PREFIX = "/ui"
LOGIN = "/ui/login"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SessionHandler = Callable[[web.Request, sessions.Session], Awaitable[web.StreamResponse]]


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


@web.middleware
async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost for ``/ui``: an error the inner layers answered in JSON becomes a page, and every answer
    carries the security headers (CSP without inline script or style, no framing, no sniffing, no cache)."""
    if not is_console(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # what aiohttp raises itself (a redirect passes through)
        if exc.status < 400:
            exc.headers.update(HEADERS)
            raise
        response = error_page(request, exc.status, exc.reason)
    if response.status >= 400 and response.content_type == "application/json" and not _live(request):
        response = error_page(request, response.status, response.reason or "error")
    response.headers.update(HEADERS)
    return response


def _live(request: web.Request) -> bool:
    """The page's script asked: it reads JSON answers itself."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    return wants_json or request.path.endswith(("/version", "/fragment"))


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    console = request.app[CONSOLE]
    text = console.render("error.html", status=status, message=message, session=None, banner=None)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str) -> web.Response:
    """303 See Other to one of our own pages."""
    return web.Response(status=303, headers={"Location": location})


def session_of(request: web.Request) -> sessions.Session | None:
    console = request.app[CONSOLE]
    return sessions.decode(request.cookies.get(sessions.COOKIE), console.secret, now=time.time())


async def _run(
    handler: SessionHandler, request: web.Request, session: sessions.Session
) -> web.StreamResponse:
    try:
        return await handler(request, session)
    except errors.StoreUnavailable:
        return error_page(request, 503, "the store is unavailable; retry in a moment")


def page(handler: SessionHandler) -> Handler:
    """A page: the signed-in session, or a redirect to the sign-in page."""

    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            return redirect(LOGIN)
        return await _run(handler, request, session)

    return wrapper


def live(handler: SessionHandler) -> Handler:
    """A live endpoint polled by the script: the session, or 401 (the script then signs in again)."""

    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            return web.json_response({"error": "signed out", "login": LOGIN}, status=401)
        return await _run(handler, request, session)

    return wrapper


def form(handler: SessionHandler) -> Handler:
    """A state-changing form: a session, its CSRF token and the approver role, else 403 and nothing done."""

    @wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        session = session_of(request)
        if session is None:
            return error_page(request, 403, "your session has ended: sign in again")
        fields = await request.post()
        given = fields.get(csrf.FIELD)
        if not csrf.valid(session, request.app[CONSOLE].secret, given if isinstance(given, str) else None):
            return error_page(
                request, 403, "this form is not from your session (CSRF token missing or wrong)"
            )
        if not session.approver:
            return error_page(request, 403, "a read-only session cannot approve, acknowledge, tick or pause")
        return await _run(handler, request, session)

    return wrapper
