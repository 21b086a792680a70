"""JSON error answers and the middleware that guarantees no request ever sees a traceback."""

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


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors become JSON bodies; anything unexpected becomes a JSON 500 with no detail leaked."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return error(exc.status, exc.reason)
    except Exception:
        log.exception("http.unhandled", path=request.path, method=request.method)
        return error(500, "internal error")
