"""Limits at the HTTP edge: requests in flight, large bodies at once, what a path or query may hold, and
reading a body within a size and a time.

Refusals for load are ``503`` with ``Retry-After: 1`` (Alertmanager retries 5xx, never 4xx). The probes
(``/healthz``, ``/readyz``, ``/metrics``) are never counted nor refused: a busy service must still say so.
How long a client may take to send its request head is the server's keep-alive timeout
(``REMEDIATOR_HEADER_TIMEOUT_S``, set in ``app.create_app``); its body, ``REMEDIATOR_BODY_TIMEOUT_S`` here.

Never reads a body for a request it refuses, and never holds a counter past its request.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from service.intake import responses
from service.model import alerts
from service.observability import Metrics

log = structlog.get_logger(__name__)

#: A body over this (declared, or of unknown length: chunked) counts as large.
LARGE_BODY_BYTES = 64 * 1024
#: Always served: probes must answer however busy the service is.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})


class Limiter:
    """Counts the requests in flight and the large bodies among them; refuses past either cap."""

    def __init__(self, *, max_inflight: int, max_large_bodies: int, metrics: Metrics) -> None:
        self.max_inflight = max_inflight
        self.max_large_bodies = max_large_bodies
        self.inflight = 0
        self.large_bodies = 0
        self._metrics = metrics

    def enter(self, request: web.Request) -> web.Response | bool | None:
        """Count ``request`` in: whether its body is large (hand it to ``leave``), ``None`` for a probe (not
        counted, never refused), or the 503 refusing it (not counted either)."""
        if request.path in PROBES:
            return None
        if self.inflight >= self.max_inflight:
            return self._busy("inflight", f"{self.max_inflight} requests in flight")
        large = is_large(request)
        if large and self.large_bodies >= self.max_large_bodies:
            return self._busy("large_bodies", f"{self.max_large_bodies} large bodies in flight")
        self.inflight += 1
        self.large_bodies += large
        return large

    def leave(self, *, large: bool) -> None:
        """The request ``enter`` counted in is answered."""
        self.inflight -= 1
        self.large_bodies -= large

    def _busy(self, reason: str, what: str) -> web.Response:
        self._metrics.http_refused.labels(reason=reason).inc()
        return responses.retry_later(f"busy: {what}; retry later")


def is_large(request: web.Request) -> bool:
    """A body declared over ``LARGE_BODY_BYTES``, or one whose size is not known before it is read: of no
    declared length (chunked), or compressed (8 KiB of gzip can inflate to the whole body limit)."""
    if not request.body_exists:
        return False
    length = request.content_length
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    return length is None or length > LARGE_BODY_BYTES or encoding not in ("", "identity")


def control_character_refusal(request: web.Request) -> web.Response | None:
    """A path parameter or query value with a control character is a 400 naming it, before any handler
    (an id with NUL would fail the PostgreSQL query it is bound to)."""
    match_info, query = request.match_info, request.query
    if not match_info and not query:  # the webhook's case: nothing to look at
        return None
    for name, value in (*match_info.items(), *query.items()):
        if alerts.CONTROL.search(name) or alerts.CONTROL.search(value):
            field = name if not alerts.CONTROL.search(name) else "query"
            return responses.error(400, f"{field} must not contain control characters", field=field)
    return None


async def read_body(request: web.Request, *, limit: int, timeout_s: float) -> bytes | web.Response:
    """The whole body, decompressed; or the answer when it cannot be had: 413 over ``limit`` (declared or
    read — the application's ``client_max_size`` is ``limit + 1``), 408 not received within ``timeout_s``,
    400 when its ``Content-Encoding`` does not decode or the client closed the connection mid-body (an answer
    nobody reads, but not an error of ours to log)."""
    if request.content_length is not None and request.content_length > limit:
        return too_large(limit)
    try:
        if request.content.is_eof():  # the whole body came with the head (the usual webhook): no wait
            body = await request.read()
        else:
            async with asyncio.timeout(timeout_s):
                body = await request.read()
    except TimeoutError:
        log.info("http.body_timeout", path=request.path, timeout_s=timeout_s)
        response = responses.error(408, f"request body not received within {timeout_s:g} s")
        response.force_close()
        return response
    except web.HTTPRequestEntityTooLarge:
        return too_large(limit)
    except ConnectionError:  # the client closed the connection mid-body: nobody reads this answer
        log.info("http.body_abandoned", path=request.path)
        response = responses.error(400, "the connection closed before the whole body arrived", field="body")
        response.force_close()
        return response
    except web.RequestPayloadError as exc:
        response = responses.error(400, f"request body could not be read: {_reason(exc)}", field="body")
        response.force_close()
        return response
    if len(body) > limit:
        return too_large(limit)
    return body


def too_large(limit: int) -> web.Response:
    response = responses.error(413, f"request body exceeds the limit of {limit} bytes")
    response.force_close()
    return response


def _reason(exc: BaseException) -> str:
    """aiohttp's words for a payload error, e.g. 'Can not decode content-encoding: gzip', on one line."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = str(getattr(cause, "message", "") or cause).replace("\n", " ").strip()
    return text[:200] or type(cause).__name__
