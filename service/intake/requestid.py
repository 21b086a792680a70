"""The request id: one per HTTP request, in every log line emitted while handling it and in the answer.

Taken from the request's ``X-Request-Id`` when it is a plain token (1-128 of ``[A-Za-z0-9._-]``), so
that a proxy's or a client's id carries through; anything else (too long, spaces, control or non-ASCII
characters) is replaced by a generated one and never reaches a log line. The id is bound into structlog's
contextvars for the request's duration only and is sent back in ``X-Request-Id`` on every answer the
application gives, refusals and errors included (aiohttp's own 400 for a request it cannot parse never
reaches the application, so it has none).

Tasks a request spawns to finish its own work (an approved action's verification, a Slack interaction)
copy the context and keep the id, which is the point; the long-lived workers are created at start-up,
outside any request, and never carry one. Never stores or logs the header's raw value.
"""

from __future__ import annotations

import os
import re

import structlog
from aiohttp import web

from service.intake import responses

HEADER = "X-Request-Id"
MAX_LENGTH = 128
_VALID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")


def request_id(header: str | None) -> str:
    """The id to use: ``header`` when it is a valid id, else a new random one (32 hex digits)."""
    if header is not None and _VALID.fullmatch(header):
        return header
    return os.urandom(16).hex()  # as unique as a uuid4, a quarter of its cost


@web.middleware
async def request_id_middleware(request: web.Request, handler: responses.Handler) -> web.StreamResponse:
    """Bind the request's id for its log lines and send it back on the answer, whatever the answer."""
    rid = request_id(request.headers.get(HEADER))
    tokens = structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # raised past the error middleware (redirects, JSON errors)
        exc.headers[HEADER] = rid
        raise
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
    response.headers[HEADER] = rid
    return response
