"""JSON answers: the errors, and what a raised HTTP error or an unexpected exception becomes (the edge
middleware, ``timing.edge``, makes sure no request ever sees a traceback)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error(status: int, message: str, *, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return json_response(body, status=status)


def retry_later(message: str, *, after_s: int = 1) -> web.Response:
    """503 with ``Retry-After``: Alertmanager retries 5xx (never 4xx), other clients learn when."""
    response = error(503, message)
    response.headers["Retry-After"] = str(after_s)
    return response


def http_error(exc: web.HTTPException) -> web.Response | None:
    """The JSON answer for a raised HTTP error, or ``None`` for one that is sent as raised (a redirect, an
    error whose body is already JSON)."""
    if exc.content_type == "application/json" or exc.status < 400:
        return None
    return error(exc.status, exc.reason)


def internal_error(request: web.Request) -> web.Response:
    """The answer to an unexpected exception (call it where it is caught: it logs the traceback), a JSON
    500 with no detail leaked."""
    log.exception("http.unhandled", path=request.path, method=request.method)
    return error(500, "internal error")
