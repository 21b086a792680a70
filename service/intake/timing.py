"""The edge: the one middleware every request passes, and the time of every HTTP answer, by route and status
code (``remediator_http_request_duration_seconds``).

One layer, in this order (each step was a middleware of its own; five coroutine layers cost the webhook a
seventh of its time, one does the same work):

1. the clock starts, and the request id (``requestid``) is bound for the request's log lines;
2. the limiter (``limits.Limiter``) counts the request in, or refuses it (503) — probes pass uncounted;
3. a path parameter or query value with a control character is a 400 naming it (``limits``), before any
   handler;
4. the handler; a raised ``HTTPException`` becomes its JSON answer, anything unexpected a JSON 500 with no
   detail leaked (``responses``);
5. the id goes on the answer (on a raised redirect too), and the answer is timed.

Timing sees every answer — the handlers' own, the JSON errors, the limiter's refusals, the router's 404 and
405 — and the exceptions that still escape (an ``HTTPException`` counts with its status; anything else as the
500 aiohttp answers). The route label is the matched resource's pattern (``/v1/incidents/{id}``), or
``unmatched`` when no resource matched: bounded, never the raw path. A request cancelled because its client
went away is not counted (no answer was given). Logs only an unexpected error; never touches the store.
"""

from __future__ import annotations

import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Histogram

from service.intake import limits, requestid, responses
from service.observability import Metrics

#: The route label of a request no resource matched (404, 405 on an unknown path).
UNMATCHED = "unmatched"


def route_of(request: web.Request) -> str:
    """The pattern of the resource that matched ``request`` (``/v1/incidents/{id}``), else ``unmatched``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


class Timing:
    """Times the answers into ``metrics.http_duration``, keeping the labelled children it has used."""

    def __init__(self, metrics: Metrics) -> None:
        self._histogram = metrics.http_duration
        # (route, status) → the histogram's child: labels() validates and locks, a dict look-up does not
        self._children: dict[tuple[str, int], Histogram] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self._children.get((route, status))
        if child is None:
            child = self._children[(route, status)] = self._histogram.labels(route, str(status))
        child.observe(seconds)


def edge(timing: Timing, limiter: limits.Limiter) -> Middleware:
    """The middleware of the application: request id, limits, control characters, JSON errors, timing."""
    observe = timing.observe
    clock = time.perf_counter
    bind = structlog.contextvars.bind_contextvars
    reset = structlog.contextvars.reset_contextvars
    header = requestid.HEADER

    @web.middleware
    async def at_the_edge(request: web.Request, handler: responses.Handler) -> web.StreamResponse:
        started = clock()
        rid = requestid.request_id(request.headers.get(header))
        tokens = bind(request_id=rid)
        try:
            try:
                response = await _guarded(request, handler, limiter)
            except web.HTTPException as exc:
                answer = responses.http_error(exc)
                if answer is None:  # a redirect, or an error already JSON: aiohttp sends it as raised
                    raise
                response = answer
            except Exception:
                response = responses.internal_error(request)
        except web.HTTPException as exc:
            exc.headers[header] = rid
            observe(route_of(request), exc.status, clock() - started)
            raise
        except Exception:
            observe(route_of(request), 500, clock() - started)
            raise
        finally:
            reset(**tokens)
        response.headers[header] = rid
        observe(route_of(request), response.status, clock() - started)
        return response

    return at_the_edge


async def _guarded(
    request: web.Request, handler: responses.Handler, limiter: limits.Limiter
) -> web.StreamResponse:
    """The limiter's refusal, the control-character 400, or the handler's answer (counted in flight)."""
    admitted = limiter.enter(request)
    if isinstance(admitted, web.Response):
        return admitted
    try:
        refusal = limits.control_character_refusal(request)
        return refusal if refusal is not None else await handler(request)
    finally:
        if admitted is not None:
            limiter.leave(large=admitted)
