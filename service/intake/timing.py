"""The time of every HTTP answer, by route and status code (``remediator_http_request_duration_seconds``).

The outermost middleware: it sees every answer — the handlers' own, the JSON errors, the limiter's 503
refusals, the router's 404 and 405 — and the exceptions that still escape (an ``HTTPException`` counts with
its status; anything else as the 500 aiohttp answers). The route label is the matched resource's pattern
(``/v1/incidents/{id}``), or ``unmatched`` when no resource matched: bounded, never the raw path. A request
cancelled because its client went away is not counted (no answer was given).

Cheap on purpose (the webhook is benchmarked): one clock read on each side and one dict look-up for the
labelled child; no logging, never touches the store.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Histogram

from service.intake import responses
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

    def middleware(self) -> Middleware:
        observe = self.observe
        clock = time.perf_counter

        @web.middleware
        async def timed(request: web.Request, handler: responses.Handler) -> web.StreamResponse:
            started = clock()
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                observe(route_of(request), exc.status, clock() - started)
                raise
            except Exception:
                observe(route_of(request), 500, clock() - started)
                raise
            observe(route_of(request), response.status, clock() - started)
            return response

        return timed
