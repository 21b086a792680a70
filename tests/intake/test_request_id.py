"""The request id at the edge middleware, on an app of its own: the id in every answer, raised ones included,
bound only while the request is handled."""

from __future__ import annotations

import re
from typing import Any

import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from service.intake import limits, requestid, timing
from service.observability import Metrics

log = structlog.get_logger(__name__)


async def _logs(request: web.Request) -> web.Response:
    log.info("test.handled", path=request.path)
    return web.json_response({"ok": True})


async def _redirects(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")  # passes the error middleware: raised up to aiohttp


async def _crashes(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


def _app() -> web.Application:
    metrics = Metrics()
    limiter = limits.Limiter(max_inflight=10, max_large_bodies=1, metrics=metrics)
    app = web.Application(middlewares=[timing.edge(timing.Timing(metrics), limiter)])
    app.router.add_get("/logs", _logs)
    app.router.add_get("/redirects", _redirects)
    app.router.add_get("/crashes", _crashes)
    return app


async def test_the_id_is_in_the_log_lines_of_the_request_and_not_after(aiohttp_client: Any) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(_app())
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        answer = await client.get("/logs", headers={"X-Request-Id": "req.42_A-b"})
        log.info("test.outside")
    assert answer.headers["X-Request-Id"] == "req.42_A-b"
    handled, outside = captured
    assert handled["event"] == "test.handled" and handled["request_id"] == "req.42_A-b"
    assert "request_id" not in outside
    assert structlog.contextvars.get_contextvars() == {}


async def test_raised_answers_and_crashes_carry_the_id(aiohttp_client: Any) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(_app())
    redirect = await client.get("/redirects", allow_redirects=False, headers={"X-Request-Id": "r-302"})
    assert redirect.status == 302 and redirect.headers["X-Request-Id"] == "r-302"
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as captured:
        crash = await client.get("/crashes", headers={"X-Request-Id": "r-500"})
    assert crash.status == 500 and crash.headers["X-Request-Id"] == "r-500"
    assert [(c["event"], c["request_id"]) for c in captured] == [("http.unhandled", "r-500")]
    missing = await client.get("/nowhere")
    assert missing.status == 404 and re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-Id"])


def test_only_plain_bounded_tokens_are_kept() -> None:
    for kept in ("abc-123", "A.b_c-9", "x" * requestid.MAX_LENGTH, "0123456789abcdef0123456789abcdef"):
        assert requestid.request_id(kept) == kept
    for replaced in (None, "", "x" * (requestid.MAX_LENGTH + 1), "a b", "a\nb", "a\x00b", "é", "a/b", '"}'):
        generated = requestid.request_id(replaced)
        assert generated != replaced and re.fullmatch(r"[0-9a-f]{32}", generated)
    assert len({requestid.request_id(None) for _ in range(1000)}) == 1000


async def test_every_answer_is_timed_and_a_crash_leaves_the_limiter_at_rest(aiohttp_client: Any) -> None:
    """The one edge layer does what the five middlewares did: the crash is a timed JSON 500, the refused
    path a timed 404 under ``unmatched``, and the request the crash ended is no longer counted in flight."""
    metrics = Metrics()
    limiter = limits.Limiter(max_inflight=10, max_large_bodies=1, metrics=metrics)
    app = web.Application(middlewares=[timing.edge(timing.Timing(metrics), limiter)])
    app.router.add_get("/crashes", _crashes)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    with capture_logs():
        crash = await client.get("/crashes")
    assert crash.status == 500 and await crash.json() == {"error": "internal error"}
    missing = await client.get("/nowhere?x=1")
    assert missing.status == 404 and (await missing.json())["error"] == "Not Found"
    assert limiter.inflight == 0 and limiter.large_bodies == 0
    count = metrics.registry.get_sample_value
    name = "remediator_http_request_duration_seconds_count"
    assert count(name, {"route": "/crashes", "code": "500"}) == 1
    assert count(name, {"route": "unmatched", "code": "404"}) == 1
